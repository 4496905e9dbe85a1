import type { HttpResponse, RateFeedback } from '@lookstream/destination'

/** mParticle's share of the account's limit used so far in its current window, on 2xx responses. */
export const USAGE_HEADER = 'x-mp-rate-limit-percentage-used'

/** The header's percentage, or undefined when absent or not a plain number from 0 to 1000. */
export function percentageUsed(headers: HttpResponse['headers']): number | undefined {
  const raw = headers[USAGE_HEADER]
  const text = (Array.isArray(raw) ? raw.at(-1) : raw)?.trim()
  if (text === undefined || !/^\d{1,4}(?:\.\d{1,6})?$/.test(text)) return undefined
  const percent = Number(text)
  return percent <= 1000 ? percent : undefined
}

export interface UsageFeedbackOptions {
  /** The account's limit, in the schedule's units per second (mParticle: batches per second). */
  limit: number
  /** How long mParticle's counting window is (ms). */
  windowMs?: number
  /** Samples of one window must span this long (ms) before they are read as a rate. */
  minSpanMs?: number
  /** Share of the limit the other clients must use, at least, before the schedule is slowed. */
  threshold?: number
  /** Share of the limit left free under the estimate. */
  margin?: number
}

interface Sample {
  at: number
  used: number
}

/**
 * Reads the header on every response of one connection. The account's counter rises through a window with
 * everything every client sent and falls back when a new window starts; its slope over one window is the rate
 * the whole account sends at. The schedule's own rate over the same time is known (the runtime's context), so
 * the difference is what other clients of the account use. When that is more than `threshold` of the limit, the
 * hint caps the schedule at what is left (less `margin`), and lower still when the rest of the current window
 * would not hold what the account sends until it ends (the window that shows the others first is already part
 * used); the runtime's cap recovers by itself, and each window that still shows the others' usage renews it.
 */
export function usageFeedback(options: UsageFeedbackOptions): RateFeedback {
  const { limit } = options
  const windowMs = options.windowMs ?? 1000
  const minSpanMs = options.minSpanMs ?? 400
  const threshold = (options.threshold ?? 0.05) * limit
  const margin = (options.margin ?? 0.02) * limit
  let first: Sample | undefined
  let peak: Sample = { at: 0, used: 0 }
  /** The schedule's units since `first` (its rate integrated over time). */
  let ours = 0
  let lastAt = 0

  return (response, context) => {
    const percent = percentageUsed(response.headers)
    if (percent === undefined) return undefined
    // The booked time (the schedule's clock) is when mParticle counted the request, give or take the network;
    // the response's arrival also waits on the event loop.
    const at = context.bookedAt
    const used = (percent / 100) * limit
    // A new window: the counter fell (responses may arrive slightly out of order, so a small fall is not one),
    // or the first sample is older than a window.
    if (first === undefined || used < first.used || used < peak.used - limit / 4 || at - first.at > windowMs * 1.5) {
      first = { at, used }
      peak = first
      ours = 0
      lastAt = at
      return undefined
    }
    ours += (context.rate * (at - lastAt)) / 1000
    lastAt = at
    if (used > peak.used) peak = { at, used }
    const span = peak.at - first.at
    if (span < minSpanMs) return undefined
    const accountRate = (peak.used - first.used) / (span / 1000)
    const ourRate = ours / ((at - first.at) / 1000)
    const others = accountRate - ourRate
    if (others < threshold) return undefined
    let target = context.configuredRate - others - margin
    // What is left of this window must also hold what everyone sends until it ends: the window started at
    // `first` at the earliest, so at most this much of it is left. Near its end a few requests remain and the
    // whole-percent reading is too coarse to be divided by so little time: the last quarter is left alone.
    const leftMs = windowMs - (at - first.at)
    if (leftMs >= windowMs / 4) target = Math.min(target, (limit - margin - used) / (leftMs / 1000) - others)
    return { share: Math.min(1, Math.max(0.05, target / context.configuredRate)) }
  }
}
