export interface BackoffPolicy {
  baseMs: number
  maxMs: number
}

/** Full-jitter exponential backoff: attempt 1 waits up to base, attempt n up to base·2^(n-1), capped. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1))
  // Half fixed, half random: never zero (a retry storm at 0 ms helps nobody), still decorrelated.
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

type Headers = Record<string, string | string[] | undefined>

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name] ?? headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}

/**
 * How long the destination asked us to wait, from Retry-After (delta-seconds or an HTTP date),
 * X-RateLimit-Retry-After, or X-RateLimit-Reset (seconds to wait, or an epoch in seconds when it is one).
 */
export function retryAfterMs(headers: Headers, now: number = Date.now()): number | undefined {
  const retryAfter = header(headers, 'retry-after') ?? header(headers, 'x-ratelimit-retry-after')
  if (retryAfter !== undefined) {
    const trimmed = retryAfter.trim()
    if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000)
    const date = Date.parse(trimmed)
    if (!Number.isNaN(date)) return Math.max(0, date - now)
  }
  const reset = header(headers, 'x-ratelimit-reset')
  if (reset !== undefined && /^\d+(\.\d+)?$/.test(reset.trim())) {
    const value = Number(reset.trim())
    // Vendors disagree whether Reset is seconds-until or an epoch (destination-apis.md §9): tell them apart.
    if (value > 1_000_000_000) return Math.max(0, Math.ceil(value * 1000 - now))
    return Math.ceil(value * 1000)
  }
  return undefined
}
