import type { HttpResponse, RateHint } from '@lookstream/destination'
import { WindowRateLimiter } from '@lookstream/simulators'
import { describe, expect, it } from 'vitest'
import { percentageUsed, usageFeedback } from '../src/usage-feedback.ts'

const response = (value?: string | string[]): HttpResponse => ({
  status: 202,
  headers: value === undefined ? {} : { 'x-mp-rate-limit-percentage-used': value },
  body: '',
})

/**
 * The account as the simulator counts it (one-second windows that start with a request, the header rounded to
 * a whole percentage), fed by this service at `ours` batches/s in requests of 10 and another client at `others`
 * batches/s in requests of 3, for `seconds`; every response of the service's own requests goes through the
 * feedback. Returns the hints.
 */
function run(ours: number, others: number, seconds: number): RateHint[] {
  const limit = 270
  const account = new WindowRateLimiter({ limit, windowMs: 1000 })
  const feedback = usageFeedback({ limit })
  const events: { at: number; cost: number; own: boolean }[] = []
  for (let at = 0; at < seconds * 1000; at += (1000 * 10) / ours) events.push({ at, cost: 10, own: true })
  if (others > 0)
    for (let at = 1.3; at < seconds * 1000; at += (1000 * 3) / others) events.push({ at, cost: 3, own: false })
  events.sort((a, b) => a.at - b.at)
  const hints: RateHint[] = []
  for (const event of events) {
    const decision = account.take('key', event.cost, event.at)
    if (!event.own || !decision.allowed) continue
    const percent = Math.round(((decision.limit - decision.remaining) / decision.limit) * 100)
    // Booked 0 to 4 ms before mParticle counted it (lateness, the network).
    const hint = feedback(response(String(percent)), {
      rate: ours,
      configuredRate: 260,
      bookedAt: event.at - (event.at % 4),
    })
    if (hint !== undefined) hints.push(hint)
  }
  return hints
}

describe('usage feedback from X-mp-rate-limit-percentage-used', () => {
  it('gives no hint when the service alone fills the account to its schedule (260 of 270 batches/s)', () => {
    expect(run(260, 0, 10)).toEqual([])
  })

  it('asks for what another client leaves: 81 batches/s used elsewhere → about (260 − 81 − 5) / 260 of the rate, less while the window would overflow', () => {
    // The service here does not slow down: every window it is shown is on its way past the limit.
    const hints = run(260, 81, 5)
    expect(hints.length).toBeGreaterThan(10)
    expect(Math.max(...hints.map((h) => h.share))).toBeGreaterThan(0.6)
    for (const hint of hints) {
      expect(hint.share).toBeGreaterThanOrEqual(0.05)
      expect(hint.share).toBeLessThan(0.74)
    }
    expect(hints.some((h) => h.share < 0.5)).toBe(true)
  })

  it('keeps asking at the share it reached while the other client goes on (the schedule already slowed)', () => {
    const hints = run(175, 81, 5)
    expect(hints.length).toBeGreaterThan(10)
    for (const hint of hints) {
      expect(hint.share).toBeGreaterThan(0.5)
      expect(hint.share).toBeLessThan(0.74)
    }
  })

  it('ignores a small other client (2 % of the limit, within the noise of the estimate)', () => {
    expect(run(250, 5, 10)).toEqual([])
  })

  it('reads the header strictly: absent, empty, negative, non-numeric or over 1000 % is no reading', () => {
    for (const value of [undefined, '', '-5', 'abc', '1e3', '12abc', '1001', '50%', ' ']) {
      expect(percentageUsed(response(value).headers)).toBeUndefined()
    }
    expect(percentageUsed(response('42').headers)).toBe(42)
    expect(percentageUsed(response(' 97.5 ').headers)).toBe(97.5)
    expect(percentageUsed(response(['10', '20']).headers)).toBe(20)
    const feedback = usageFeedback({ limit: 270 })
    expect(feedback(response('abc'), { rate: 260, configuredRate: 260, bookedAt: 0 })).toBeUndefined()
  })
})
