import { retryAfterMs } from './backoff.ts'
import type { Classification, EncodedItem, HttpResponse, ItemOutcome } from './destination.ts'

/**
 * The usual answer of a batch API that speaks for the whole request: 2xx delivered; 400 and 413 name no item, so
 * the batch is bisected down to the one refused; 401/403 pause the connection; 408, 429 and 5xx are retried
 * (honouring Retry-After); any other status refuses every item. The reason carries the status and the start of
 * the body (the vendor's words).
 */
export function classifyWholeRequest(response: HttpResponse, items: readonly EncodedItem<unknown>[]): Classification {
  const { status } = response
  const detail = response.body.slice(0, 300)
  const reason = `HTTP ${status}${detail ? `: ${detail}` : ''}`
  let outcome: ItemOutcome
  if (status >= 200 && status < 300) outcome = { kind: 'delivered' }
  else if (status === 400 || status === 413) return { kind: 'split', reason }
  else if (status === 401 || status === 403) outcome = { kind: 'auth', reason, status }
  else if (status === 408 || status === 429 || status >= 500) {
    const code = status === 429 ? 'LS_DEST_RATE_LIMITED' : 'LS_DEST_RETRYABLE'
    outcome = { kind: 'retryable', reason, status, code, retryAfterMs: retryAfterMs(response.headers) }
  } else outcome = { kind: 'permanent', reason, status, code: 'LS_DEST_REJECTED' }
  return { kind: 'items', outcomes: items.map(() => outcome) }
}
