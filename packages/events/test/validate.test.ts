import { describe, expect, it } from 'vitest'
import { MAX_MESSAGE_BYTES, decodeMessage, decodeSendEvent, validateMessage, validateSendEvent } from '../src/index.ts'

const identify = {
  type: 'identify',
  messageId: '2ed6657d-e927-568b-95e1-2665a8aea6a2',
  userId: 'cust_123',
  timestamp: '2026-06-01T06:00:00Z',
  traits: { plan: 'annual', ltv: 0, churned: null, nested: { tags: ['a', 'b'] } },
  context: {
    ip: '203.0.113.7',
    library: { name: 'lookstream', version: '0.1.0' },
    lookstream: { sendId: 'snd_1', row: 0, action: 'braze' },
  },
  integrations: {
    All: false,
    Braze: { connection: 'default', identifierKey: 'external_id', exportLabel: 'winback', updateExistingOnly: true },
  },
}
const track = {
  type: 'track',
  messageId: 'm-track-1',
  anonymousId: 'anon-9',
  event: 'Subscription Renewed',
  properties: { revenue: 99.5 },
  timestamp: '2026-06-01T06:00:00.123+02:00',
  integrations: { All: false, Segment: true, Heap: { propertyType: 'user', joinKey: 'email' } },
}
const group = {
  type: 'group',
  messageId: 'm-group-1',
  userId: 'cust_123',
  groupId: 'acct_7',
  traits: { name: 'Acme' },
  timestamp: '2026-06-01T06:00:00Z',
  integrations: { mParticle: { environment: 'development', dataType: 'user_data', eventType: 'other' } },
}

function errorsOf(value: unknown): string[] {
  const result = validateMessage(value)
  if (result.ok) throw new Error('expected the message to be rejected')
  return result.errors
}

function without(value: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...value }
  delete copy[key]
  return copy
}

describe('validateMessage', () => {
  it('accepts valid identify, track and group messages and returns them', () => {
    for (const message of [identify, track, group]) {
      const result = validateMessage(message)
      expect(result).toEqual({ ok: true, message })
    }
  })

  it('accepts every destination key with boolean or options values', () => {
    const result = validateMessage({
      ...track,
      integrations: {
        All: true,
        Segment: { connection: 'eu-workspace' },
        Braze: false,
        Heap: true,
        mParticle: { connection: 'prod' },
        'Recurly Engage': { connection: 'default' },
      },
    })
    expect(result.ok).toBe(true)
  })

  it.each([
    ['an array', [], ['/: must be a JSON object']],
    ['null', null, ['/: must be a JSON object']],
    ['an unknown type', { ...identify, type: 'page' }, ['/type: must be "identify", "track" or "group"']],
    ['no identity', without(without(identify, 'userId'), 'anonymousId'), ['/: must have one of userId, anonymousId']],
    ['group without user', without(group, 'userId'), ['/: must have one of userId, anonymousId']],
    ['group without groupId', without(group, 'groupId'), ['/: must have groupId']],
    ['track without event', without(track, 'event'), ['/: must have event']],
    ['track with an empty event', { ...track, event: '' }, ['/event: must not have fewer than 1 characters']],
    ['a misspelt top-level field', { ...identify, trait: {} }, ['/trait: unknown property']],
    ['properties on identify', { ...identify, properties: {} }, ['/properties: unknown property']],
    ['no messageId', without(identify, 'messageId'), ['/: must have messageId']],
    ['an empty messageId', { ...identify, messageId: '' }, ['/messageId: must not have fewer than 1 characters']],
    [
      'a 100-character messageId',
      { ...identify, messageId: 'x'.repeat(100) },
      ['/messageId: must not have more than 99 characters'],
    ],
    ['a numeric userId', { ...identify, userId: 42 }, ['/userId: must be string']],
    ['a date without time', { ...identify, timestamp: '2026-06-01' }, ['/timestamp: must match format "date-time"']],
    [
      'a timestamp without zone',
      { ...identify, timestamp: '2026-06-01T06:00:00' },
      ['/timestamp: must match format "date-time"'],
    ],
    ['no timestamp', without(identify, 'timestamp'), ['/: must have timestamp']],
    ['no integrations', without(identify, 'integrations'), ['/: must have integrations']],
    ['traits as an array', { ...identify, traits: ['a'] }, ['/traits: must be object']],
    ['context as a string', { ...identify, context: 'x' }, ['/context: must be object']],
    [
      'a negative row in context.lookstream',
      { ...identify, context: { lookstream: { sendId: 's', row: -1, action: 'braze' } } },
      ['/context/lookstream/row: must be >= 0'],
    ],
    [
      'an unknown integration',
      { ...identify, integrations: { Brazee: true } },
      ['/integrations/Brazee: unknown property'],
    ],
    [
      'a misspelt Braze option',
      { ...identify, integrations: { Braze: { conection: 'x' } } },
      ['/integrations/Braze/conection: unknown property'],
    ],
    [
      'a bad Braze identifierKey',
      { ...identify, integrations: { Braze: { identifierKey: 'email' } } },
      ['/integrations/Braze/identifierKey: must be "external_id" or "braze_id"'],
    ],
    [
      'a bad Heap propertyType',
      { ...identify, integrations: { Heap: { propertyType: 'group' } } },
      ['/integrations/Heap/propertyType: must be "user" or "account"'],
    ],
    [
      'a bad mParticle environment',
      { ...identify, integrations: { mParticle: { environment: 'prod' } } },
      ['/integrations/mParticle/environment: must be "production" or "development"'],
    ],
    [
      'a number as integration',
      { ...identify, integrations: { Segment: 1 } },
      ['/integrations/Segment: must be boolean or object'],
    ],
    [
      'a connection with a slash',
      { ...identify, integrations: { Segment: { connection: '../x' } } },
      ['/integrations/Segment/connection: must match pattern "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"'],
    ],
  ])('rejects %s with the precise path', (_name, value, expected) => {
    expect(errorsOf(value)).toEqual(expected)
  })

  it('rejects a message over MAX_MESSAGE_BYTES', () => {
    const big = { ...identify, traits: { blob: 'x'.repeat(MAX_MESSAGE_BYTES) } }
    expect(errorsOf(big)).toEqual([expect.stringMatching(/^\/: message is \d+ bytes, over the 65536-byte limit$/)])
  })

  it('accepts a message just under the limit', () => {
    const base = Buffer.byteLength(JSON.stringify({ ...identify, traits: { blob: '' } }))
    const fits = { ...identify, traits: { blob: 'x'.repeat(MAX_MESSAGE_BYTES - base) } }
    expect(Buffer.byteLength(JSON.stringify(fits))).toBe(MAX_MESSAGE_BYTES)
    expect(validateMessage(fits).ok).toBe(true)
  })
})

describe('decodeMessage', () => {
  it('parses and validates a Buffer', () => {
    expect(decodeMessage(Buffer.from(JSON.stringify(track)))).toEqual({ ok: true, message: track })
  })

  it('rejects invalid JSON, tombstones and oversized values before parsing', () => {
    expect(decodeMessage(Buffer.from('{"type":'))).toEqual({
      ok: false,
      errors: [expect.stringMatching(/^\/: not valid JSON/)],
    })
    expect(decodeMessage(null)).toEqual({ ok: false, errors: ['/: empty value (tombstone)'] })
    const oversized = Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20)
    expect(decodeMessage(oversized)).toEqual({
      ok: false,
      errors: [`/: message is ${MAX_MESSAGE_BYTES + 1} bytes, over the 65536-byte limit`],
    })
  })

  it('never quotes the value in a JSON error, only where it is', () => {
    const value = `${JSON.stringify(track).slice(0, -1)},"properties":{"email": leak@example.com}}`
    const decoded = decodeMessage(Buffer.from(value))
    expect(decoded.ok).toBe(false)
    expect(JSON.stringify(decoded)).not.toContain('leak')
    const positioned = decodeMessage('{"a":1,}')
    expect(positioned).toEqual({ ok: false, errors: ['/: not valid JSON (at byte 7)'] })
  })

  it('refuses a number a double cannot hold exactly, by its pointer, and keeps numbers written another way', () => {
    const withNumber = (number: string) =>
      `${JSON.stringify(track).slice(0, -1).replace('"properties":{', `"properties":{"n":${number},`)}}`
    for (const number of [
      '9007199254740993',
      '0.10000000000000000001',
      '1e400',
      '-1e400',
      '1e-400',
      '123456789012345678901234567890',
    ]) {
      expect(decodeMessage(withNumber(number)), number).toEqual({
        ok: false,
        errors: [
          '/properties/n: a number a double cannot hold exactly (more than 15 significant digits, or out of range); send it as a string of its digits',
        ],
      })
    }
    for (const number of ['1.50', '1E2', '9007199254740992', '0.1000000000000000', '-0', '1e21', '12345678901234567']) {
      const decoded = decodeMessage(withNumber(number))
      if (number === '12345678901234567') {
        // 17 digits a double does not keep (it holds 12345678901234568).
        expect(decoded.ok, number).toBe(false)
        continue
      }
      expect(decoded.ok, number).toBe(true)
    }
    // Digits inside strings are not numbers.
    expect(decodeMessage(JSON.stringify({ ...track, userId: '12345678901234567890123', event: 'e1e9' })).ok).toBe(true)
  })

  it('reports schema errors of a parsed value', () => {
    expect(decodeMessage(JSON.stringify({ ...track, event: 7 }))).toEqual({
      ok: false,
      errors: ['/event: must be string'],
    })
  })
})

describe('SendEvent', () => {
  const started = {
    type: 'send',
    phase: 'started',
    sendId: 'snd_1',
    at: '2026-06-01T06:00:00Z',
    producer: 'ingress',
    destination: 'braze',
    action: 'braze',
    connection: 'default',
    lookId: '42',
    scheduledPlanId: '7',
    ranAt: '2026-06-01T06:00:00Z',
    status: 'running',
    counts: { received: 0, accepted: 0, rejected: 0 },
    startedAt: '2026-06-01T06:00:00Z',
  }

  it('accepts started and finished events', () => {
    expect(validateSendEvent(started).ok).toBe(true)
    const finished = {
      ...started,
      phase: 'finished',
      status: 'succeeded',
      counts: { received: 10, accepted: 9, rejected: 1, produced: 9 },
      finishedAt: '2026-06-01T06:00:02Z',
      durationMs: 2000,
      rejectReasons: [{ row: 3, reason: 'no userId' }],
    }
    expect(decodeSendEvent(Buffer.from(JSON.stringify(finished)))).toEqual({ ok: true, message: finished })
  })

  it('rejects an unknown destination, a negative count and too many reasons', () => {
    expect(validateSendEvent({ ...started, destination: 'hubspot' })).toMatchObject({ ok: false })
    expect(validateSendEvent({ ...started, counts: { received: -1 } })).toEqual({
      ok: false,
      errors: ['/counts/received: must be >= 0'],
    })
    const reasons = Array.from({ length: 21 }, (_, row) => ({ row, reason: 'x' }))
    expect(validateSendEvent({ ...started, rejectReasons: reasons })).toEqual({
      ok: false,
      errors: ['/rejectReasons: must not have more than 20 items'],
    })
  })
})
