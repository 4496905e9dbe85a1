import { describe, expect, it } from 'vitest'
import { parseRanAt } from '../src/execute/run-send.ts'

// A result's ran_at becomes every message's timestamp: only an ISO 8601 date-time is read, never guessed.

describe('parseRanAt', () => {
  it.each([
    ['2017-07-28T02:25:19+00:00', '2017-07-28T02:25:19.000Z'],
    ['2026-11-22T00:00:00Z', '2026-11-22T00:00:00.000Z'],
    ['2026-01-01T10:00:00.123456+05:30', '2026-01-01T04:30:00.123Z'],
    ['2026-01-01T10:00:00-0800', '2026-01-01T18:00:00.000Z'],
    ['2026-01-01T10:00:00+02', '2026-01-01T08:00:00.000Z'],
    ['2026-01-01 10:00', '2026-01-01T10:00:00.000Z'],
    ['2024-02-29T12:00:00z', '2024-02-29T12:00:00.000Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
  ])('reads %s', (text, iso) => {
    expect(new Date(parseRanAt(text)!).toISOString()).toBe(iso)
  })

  it.each([
    'garbage 12',
    '1',
    '2026-11-22',
    '2026-02-30T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T10:60:00Z',
    '2026-01-01T10:00:00+24:00',
    '+275760-09-13T00:00:00Z',
    'Tue, 08 Dec 2026 00:00:00 GMT',
    ' 2026-01-01T10:00:00Z',
  ])('refuses %s', (text) => {
    expect(parseRanAt(text)).toBeUndefined()
  })
})
