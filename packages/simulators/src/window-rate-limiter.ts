export interface WindowLimit {
  /** Units (requests, events or batches) allowed per window. */
  limit: number
  windowMs: number
}

export interface WindowDecision {
  allowed: boolean
  limit: number
  remaining: number
  /** Epoch milliseconds at which the current window ends. */
  resetAt: number
  /** Milliseconds until the units asked for could be granted; 0 when allowed. */
  retryAfterMs: number
}

interface Window {
  startedAt: number
  used: number
}

const sweepThreshold = 10_000

// Fixed windows rather than a sliding log: the real APIs publish a limit, a remaining count and a reset time,
// which is exactly the state a fixed window has, and it costs one map lookup per request.
export class WindowRateLimiter {
  #limit: WindowLimit | null
  readonly #windows = new Map<string, Window>()
  /** Size at which the next sweep runs: doubled past the live windows, so sweeping stays linear overall. */
  #sweepAt = sweepThreshold

  constructor(limit: WindowLimit | null) {
    this.#limit = limit
  }

  get limit(): WindowLimit | null {
    return this.#limit
  }

  setLimit(limit: WindowLimit | null): void {
    this.#limit = limit
    this.#windows.clear()
  }

  /** Takes `cost` units for `key` if they fit in its window; a refused request consumes nothing. */
  take(key = '', cost = 1, now = Date.now()): WindowDecision {
    const decision = this.fits(key, cost, now)
    const limit = this.#limit
    if (!decision.allowed || limit === null) return decision
    this.#current(key, limit, now).used += cost
    return { ...decision, remaining: decision.remaining - cost }
  }

  /** Whether `cost` units would fit, without taking them (for requests checked against several limits). */
  fits(key = '', cost = 1, now = Date.now()): WindowDecision {
    const limit = this.#limit
    if (limit === null) {
      return {
        allowed: true,
        limit: Number.POSITIVE_INFINITY,
        remaining: Number.POSITIVE_INFINITY,
        resetAt: now,
        retryAfterMs: 0,
      }
    }
    const window = this.#current(key, limit, now)
    const resetAt = window.startedAt + limit.windowMs
    const allowed = window.used + cost <= limit.limit
    return {
      allowed,
      limit: limit.limit,
      remaining: Math.max(0, limit.limit - window.used),
      resetAt,
      retryAfterMs: allowed ? 0 : resetAt - now,
    }
  }

  reset(): void {
    this.#windows.clear()
  }

  #current(key: string, limit: WindowLimit, now: number): Window {
    let window = this.#windows.get(key)
    if (window === undefined || now >= window.startedAt + limit.windowMs) {
      if (window === undefined && this.#windows.size >= this.#sweepAt) {
        this.#sweep(limit, now)
        this.#sweepAt = Math.max(sweepThreshold, this.#windows.size * 2)
      }
      window = { startedAt: now, used: 0 }
      this.#windows.set(key, window)
    }
    return window
  }

  #sweep(limit: WindowLimit, now: number): void {
    for (const [key, window] of this.#windows) if (now >= window.startedAt + limit.windowMs) this.#windows.delete(key)
  }
}
