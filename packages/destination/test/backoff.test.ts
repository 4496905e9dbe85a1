import { describe, expect, it } from 'vitest'
import { backoffDelay, retryAfterMs } from '../src/backoff.ts'

describe('backoffDelay', () => {
  it('grows exponentially from the base and stays within [ceiling/2, ceiling]', () => {
    const policy = { baseMs: 100, maxMs: 10_000 }
    expect(backoffDelay(1, policy, () => 0)).toBe(50)
    expect(backoffDelay(1, policy, () => 1)).toBe(100)
    expect(backoffDelay(3, policy, () => 0)).toBe(200)
    expect(backoffDelay(3, policy, () => 1)).toBe(400)
  })

  it('is capped at maxMs however many attempts were made', () => {
    const policy = { baseMs: 100, maxMs: 1000 }
    expect(backoffDelay(30, policy, () => 1)).toBe(1000)
    expect(backoffDelay(30, policy, () => 0)).toBe(500)
  })

  it('spreads concurrent retries (jitter)', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, { baseMs: 100, maxMs: 60_000 })))
    expect(delays.size).toBeGreaterThan(10)
  })
})

describe('retryAfterMs', () => {
  const now = Date.parse('2026-11-22T12:00:00Z')

  it('reads Retry-After in delta-seconds', () => {
    expect(retryAfterMs({ 'retry-after': '3' }, now)).toBe(3000)
    expect(retryAfterMs({ 'retry-after': '0.5' }, now)).toBe(500)
  })

  it('reads Retry-After as an HTTP date', () => {
    expect(retryAfterMs({ 'retry-after': 'Sun, 22 Nov 2026 12:00:07 GMT' }, now)).toBe(7000)
    expect(retryAfterMs({ 'retry-after': 'Sun, 22 Nov 2026 11:00:00 GMT' }, now)).toBe(0)
  })

  it('falls back to X-RateLimit-Reset as seconds to wait or as an epoch', () => {
    expect(retryAfterMs({ 'x-ratelimit-reset': '2' }, now)).toBe(2000)
    expect(retryAfterMs({ 'x-ratelimit-reset': String(now / 1000 + 4) }, now)).toBe(4000)
  })

  it('reads Braze-style X-RateLimit-Retry-After and ignores garbage', () => {
    expect(retryAfterMs({ 'x-ratelimit-retry-after': '1' }, now)).toBe(1000)
    expect(retryAfterMs({ 'retry-after': 'soon' }, now)).toBeUndefined()
    expect(retryAfterMs({}, now)).toBeUndefined()
  })
})
