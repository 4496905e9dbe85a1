import { HEADERS } from '@lookstream/events'
import type { InboundRecord } from './route-record.ts'

/** Headers the runtime adds beside the shared ones in @lookstream/events. */
export const RUNTIME_HEADERS = {
  errorCode: 'lookstream-error-code',
  /** Set by the DLQ replay command on messages it re-publishes. */
  replayedAt: 'lookstream-replayed-at',
  /** A parked message's place among its user's parked messages (ordered destinations; docs/adr/0020). */
  orderTicket: 'lookstream-order-ticket',
} as const

const MAX_ERROR_CHARS = 1000

// Headers describing earlier failures: replaced, never accumulated, when a message fails again, and dropped
// when the DLQ command replays a message (it starts clean).
export const FAILURE_HEADERS: ReadonlySet<string> = new Set<string>([
  HEADERS.error,
  HEADERS.errorClass,
  HEADERS.attempts,
  HEADERS.originalTopic,
  HEADERS.originalPartition,
  HEADERS.originalOffset,
  HEADERS.firstAttemptAt,
  HEADERS.lastAttemptAt,
  HEADERS.retryAt,
  RUNTIME_HEADERS.errorCode,
  RUNTIME_HEADERS.orderTicket,
])

/** Where a message first came from and how often it was tried, read back from a retry-topic record. */
export interface DeliveryHistory {
  originalTopic: string
  originalPartition: number
  originalOffset: string
  attempts: number
  firstAttemptAt: number | undefined
}

export function historyOf(record: InboundRecord): DeliveryHistory {
  const h = record.headers
  const partition = Number(h[HEADERS.originalPartition])
  const attempts = Number(h[HEADERS.attempts])
  const first = Date.parse(h[HEADERS.firstAttemptAt] ?? '')
  return {
    originalTopic: h[HEADERS.originalTopic] ?? record.topic,
    originalPartition: Number.isInteger(partition) ? partition : record.partition,
    originalOffset: h[HEADERS.originalOffset] ?? record.offset,
    attempts: Number.isInteger(attempts) && attempts >= 0 ? attempts : 0,
    firstAttemptAt: Number.isNaN(first) ? undefined : first,
  }
}

export interface FailureInfo {
  error: string
  errorClass: string
  code: string
  attempts: number
  firstAttemptAt: number
  lastAttemptAt: number
  retryAt?: number
}

/** The original headers (minus earlier failure headers) plus this failure's, for the retry topic or the DLQ. */
export function failureHeaders(
  record: InboundRecord,
  history: DeliveryHistory,
  failure: FailureInfo,
): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(record.headers)) {
    if (value !== undefined && !FAILURE_HEADERS.has(name)) headers[name] = value
  }
  headers[HEADERS.error] = failure.error.slice(0, MAX_ERROR_CHARS)
  headers[HEADERS.errorClass] = failure.errorClass
  headers[RUNTIME_HEADERS.errorCode] = failure.code
  headers[HEADERS.attempts] = String(failure.attempts)
  headers[HEADERS.originalTopic] = history.originalTopic
  headers[HEADERS.originalPartition] = String(history.originalPartition)
  headers[HEADERS.originalOffset] = history.originalOffset
  headers[HEADERS.firstAttemptAt] = new Date(failure.firstAttemptAt).toISOString()
  headers[HEADERS.lastAttemptAt] = new Date(failure.lastAttemptAt).toISOString()
  if (failure.retryAt !== undefined) headers[HEADERS.retryAt] = new Date(failure.retryAt).toISOString()
  return headers
}
