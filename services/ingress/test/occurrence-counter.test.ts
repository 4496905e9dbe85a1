import { describe, expect, it } from 'vitest'
import { fingerprintOf, OccurrenceCounter, REPEAT_BEYOND_TRACKING } from '../src/execute/occurrence-counter.ts'

describe('OccurrenceCounter', () => {
  it('counts repeats per fingerprint across growth', () => {
    const counter = new OccurrenceCounter()
    for (let i = 1; i <= 20_000; i++) expect(counter.next(i * 7919, i)).toBe(0)
    for (let i = 1; i <= 20_000; i += 1000) expect(counter.next(i * 7919, i)).toBe(1)
    expect(counter.next(0, 0)).toBe(0)
    expect(counter.next(0, 0)).toBe(1)
    expect(counter.next(7919 * 5001, 5001)).toBe(2)
    expect(counter.distinct).toBe(20_001)
  })

  it('stops growing at maxDistinct: later first sightings get 0, later repeats a row-based occurrence', () => {
    const counter = new OccurrenceCounter({ maxDistinct: 100, bloomBits: 1 << 16 })
    for (let i = 1; i <= 100; i++) expect(counter.next(i * 7919, i, i)).toBe(0)
    // Rows tracked before the table was full keep exact counts.
    expect(counter.next(7919 * 50, 50, 500)).toBe(1)
    expect(counter.next(7919 * 50, 50, 501)).toBe(2)
    // New rows past the cap: first sightings still 0, the table does not grow.
    for (let i = 101; i <= 1100; i++) expect(counter.next(i * 104729, i * 31, i)).toBe(0)
    expect(counter.distinct).toBe(100)
    // A repeat past the cap is told apart by its row number: unique, and the same for the same row order.
    expect(counter.next(200 * 104729, 200 * 31, 2000)).toBe(REPEAT_BEYOND_TRACKING + 2000)
    expect(counter.next(200 * 104729, 200 * 31, 2001)).toBe(REPEAT_BEYOND_TRACKING + 2001)
  })

  it('gives the same occurrences for the same rows in the same order, also past the cap', () => {
    const run = () => {
      const counter = new OccurrenceCounter({ maxDistinct: 10, bloomBits: 1 << 12 })
      return Array.from({ length: 300 }, (_, row) => counter.next((row % 40) * 65537, row % 40, row))
    }
    const first = run()
    expect(run()).toEqual(first)
    expect(new Set(first.filter((o) => o >= REPEAT_BEYOND_TRACKING)).size).toBe(
      first.filter((o) => o >= REPEAT_BEYOND_TRACKING).length,
    )
  })

  it('takes the first 64 bits of a UUID', () => {
    expect(fingerprintOf('01234567-89ab-5def-8123-456789abcdef')).toEqual([0x01234567, 0x89ab5def])
  })
})
