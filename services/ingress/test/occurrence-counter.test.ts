import { describe, expect, it } from 'vitest'
import { fingerprintOf, OccurrenceCounter } from '../src/execute/occurrence-counter.ts'

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

  it('takes the first 64 bits of a UUID', () => {
    expect(fingerprintOf('01234567-89ab-5def-8123-456789abcdef')).toEqual([0x01234567, 0x89ab5def])
  })
})
