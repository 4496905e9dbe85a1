import { describe, expect, it } from 'vitest'
import { decodeMessage, validateBuiltMessage, validateMessage } from '../src/index.ts'

// decodeMessage accepts the usual messages without running the compiled schema (see validate.ts). These cases
// compare it with validateMessage, which always runs the compiled schema, on valid messages and on one mutation
// at a time of every field the fast path looks at.

const bases: Record<string, unknown>[] = [
  {
    type: 'identify',
    messageId: '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    userId: 'cust_123',
    timestamp: '2026-06-01T06:00:00.000Z',
    traits: { email: 'a@example.com', plan: 'annual', ltv: 3 },
    context: {
      lookstream: { sendId: 'snd_1', row: 0, action: 'segment_identify' },
      library: { name: 'lookstream', version: '0.1.0' },
      ip: '203.0.113.7',
    },
    integrations: { All: false, Segment: { connection: 'default' } },
  },
  {
    type: 'track',
    messageId: 'm-track-1',
    anonymousId: 'anon-9',
    event: 'Subscription Renewed',
    properties: { revenue: 99.5 },
    timestamp: '2026-06-01T06:00:00.123+02:00',
    integrations: { All: false, Segment: true, Heap: { propertyType: 'user' } },
  },
  {
    type: 'group',
    messageId: 'm-group-1',
    userId: 'u-1',
    anonymousId: 'a-1',
    groupId: 'acme',
    traits: { name: 'Acme' },
    timestamp: '2026-06-01T06:00:00Z',
    integrations: { Braze: false, mParticle: { connection: 'eu.prod-1' } },
  },
  {
    type: 'identify',
    messageId: 'f0a1b2c3-d4e5-5f60-8a7b-8c9d0e1f2a3b',
    userId: 'cust_9',
    timestamp: '2026-06-01T06:00:00Z',
    traits: { plan: 'annual' },
    context: { lookstream: { sendId: 'snd_2', row: 4, action: 'braze' }, identities: { email: 'a@example.com' } },
    integrations: {
      All: false,
      Braze: {
        connection: 'default',
        identifierKey: 'external_id',
        exportLabel: 'LOOKER_EXPORT',
        updateExistingOnly: true,
        nulls: 'skip',
      },
      Heap: { connection: 'eu', propertyType: 'user', joinKey: 'users.id', envId: '1234567890', longValues: 'reject' },
      mParticle: { connection: 'default', environment: 'production', dataType: 'user_data', eventType: 'other' },
      'Recurly Engage': { connection: 'default' },
    },
  },
]

const strings = (max: number): unknown[] => [
  '',
  'x',
  'x'.repeat(max),
  'x'.repeat(max + 1),
  '😀'.repeat(max),
  '😀'.repeat(max + 1),
  `${'x'.repeat(max - 1)}😀`,
  7,
  null,
  true,
  [],
  {},
  ['x'],
]
const objects: unknown[] = [{}, { a: 1 }, [], null, 'x', 3, true, { __proto__: 1 }]

// [path, replacement values]; the string 'DELETE' removes the field.
const mutations: [string[], unknown[]][] = [
  [['type'], ['identify', 'track', 'group', 'page', 1, null, 'DELETE']],
  [['messageId'], [...strings(99), 'DELETE']],
  [['userId'], [...strings(1024), 'DELETE']],
  [['anonymousId'], [...strings(1024), 'DELETE']],
  [['event'], [...strings(1024), 'DELETE']],
  [['groupId'], [...strings(1024), 'DELETE']],
  [['traits'], [...objects, 'DELETE']],
  [['properties'], [...objects, 'DELETE']],
  [
    ['timestamp'],
    [
      '2026-06-01T06:00:00Z',
      '2026-06-01T06:00:00',
      '2026-02-30T06:00:00Z',
      '2026-06-01 06:00:00Z',
      '2026-06-01T06:00:00+25:00',
      '2026-06-01',
      '',
      0,
      null,
      'DELETE',
    ],
  ],
  [['context'], [...objects, 'DELETE']],
  [
    ['context', 'lookstream'],
    [...objects, 'DELETE'],
  ],
  [
    ['context', 'lookstream', 'sendId'],
    [...strings(128), 'DELETE'],
  ],
  [
    ['context', 'lookstream', 'action'],
    [...strings(128), 'DELETE'],
  ],
  [
    ['context', 'lookstream', 'row'],
    [0, 5, -1, 1.5, '1', null, 2 ** 53, 'DELETE'],
  ],
  [['context', 'lookstream', 'extra'], ['x']],
  [
    ['context', 'library'],
    [...objects, 'DELETE'],
  ],
  [
    ['context', 'library', 'name'],
    [...strings(128), 'DELETE'],
  ],
  [
    ['context', 'library', 'version'],
    [...strings(64), 'DELETE'],
  ],
  [['context', 'library', 'extra'], ['x']],
  [['integrations'], [...objects, { All: false }, 'DELETE']],
  [
    ['integrations', 'All'],
    [true, false, 'false', null, 0, 'DELETE'],
  ],
  [
    ['integrations', 'Segment'],
    [true, false, {}, null, 'x', [], { connection: 'eu' }, { other: 1 }, 'DELETE'],
  ],
  [
    ['integrations', 'Segment', 'connection'],
    ['default', 'eu.prod_1-a', '', '-x', 'a b', 'x'.repeat(64), 'x'.repeat(65), 'é', 1, null],
  ],
  [
    ['integrations', 'Braze'],
    [true, { connection: 'default', identifierKey: 'braze_id' }, { identifierKey: 'nope' }],
  ],
  [
    ['integrations', 'Braze', 'identifierKey'],
    ['external_id', 'braze_id', 'user_alias', '', null, 1, 'DELETE'],
  ],
  [
    ['integrations', 'Braze', 'exportLabel'],
    [...strings(255), 'DELETE'],
  ],
  [
    ['integrations', 'Braze', 'updateExistingOnly'],
    [true, false, 'true', 0, null, 'DELETE'],
  ],
  [
    ['integrations', 'Braze', 'nulls'],
    ['skip', 'send', 'drop', '', null, 'DELETE'],
  ],
  [
    ['integrations', 'Braze', 'connection'],
    ['default', 'eu.prod_1-a', '', '-x', 'x'.repeat(65), 1, null],
  ],
  [
    ['integrations', 'Braze', 'extra'],
    ['x', true],
  ],
  [
    ['integrations', 'Heap', 'propertyType'],
    ['user', 'account', 'group', '', null, 'DELETE'],
  ],
  [
    ['integrations', 'Heap', 'joinKey'],
    [...strings(255), 'DELETE'],
  ],
  [
    ['integrations', 'Heap', 'envId'],
    ['1', '1234567890', '9'.repeat(32), '9'.repeat(33), '', '12a', ' 1', '1\n', '١٢', 12, null, 'DELETE'],
  ],
  [
    ['integrations', 'Heap', 'longValues'],
    ['reject', 'truncate', 'cut', '', null, 'DELETE'],
  ],
  [['integrations', 'Heap', 'extra'], ['x']],
  [
    ['integrations', 'mParticle', 'environment'],
    ['production', 'development', 'staging', '', null, 'DELETE'],
  ],
  [
    ['integrations', 'mParticle', 'dataType'],
    ['user_data', 'event_data', 'events', '', null, 'DELETE'],
  ],
  [
    ['integrations', 'mParticle', 'eventType'],
    [...strings(64), 'DELETE'],
  ],
  [['integrations', 'mParticle', 'extra'], ['x']],
  [
    ['integrations', 'Recurly Engage'],
    [true, false, { connection: 'default' }, { connection: 'default', extra: 1 }, {}, null, 'DELETE'],
  ],
  [
    ['integrations', 'Heap'],
    [true, { propertyType: 'account', joinKey: 'email' }, { joinKey: '' }],
  ],
  [
    ['integrations', 'mParticle'],
    [{ environment: 'production' }, { environment: 'staging' }],
  ],
  [
    ['integrations', 'Recurly Engage'],
    [true, { connection: 'x' }, { other: 1 }],
  ],
  [['integrations', 'Unknown'], [true]],
  [['extra'], ['x', null]],
]

function mutated(base: Record<string, unknown>, path: string[], replacement: unknown): string {
  const copy = structuredClone(base)
  let target: Record<string, unknown> = copy
  for (const key of path.slice(0, -1)) {
    const next = target[key]
    if (typeof next !== 'object' || next === null || Array.isArray(next)) return JSON.stringify(copy)
    target = next as Record<string, unknown>
  }
  const last = path[path.length - 1]!
  if (replacement === 'DELETE') delete target[last]
  else target[last] = replacement
  return JSON.stringify(copy)
}

describe('decodeMessage', () => {
  it('accepts exactly what the compiled schema accepts, for valid messages and one mutation of each field', () => {
    let accepted = 0
    let rejected = 0
    const texts: string[] = []
    for (const base of bases) {
      texts.push(JSON.stringify(base))
      for (const [path, values] of mutations) for (const value of values) texts.push(mutated(base, path, value))
    }
    // A JSON text with an own "__proto__" key, which only JSON.parse creates.
    texts.push(JSON.stringify(bases[0]).replace('{"type"', '{"__proto__":{},"type"'))
    texts.push(JSON.stringify(bases[0]).replace('"traits":{', '"traits":{"__proto__":{"x":1},'))
    for (const text of texts) {
      const decoded = decodeMessage(text)
      const reference = validateMessage(JSON.parse(text), Buffer.byteLength(text))
      expect({ text, ok: decoded.ok }).toEqual({ text, ok: reference.ok })
      if (decoded.ok) {
        expect(decoded.message).toEqual(JSON.parse(text))
        accepted++
      } else {
        expect(decoded.errors).toEqual(reference.ok ? [] : reference.errors)
        rejected++
      }
    }
    // Both answers occur often, so the comparison covers the fast path and the schema's rejections.
    expect(accepted).toBeGreaterThan(100)
    expect(rejected).toBeGreaterThan(100)
  })
})

describe('validateBuiltMessage', () => {
  it('answers as validateMessage does, for the same messages and for built ones holding undefined values', () => {
    const messages: Record<string, unknown>[] = []
    for (const base of bases) {
      messages.push(structuredClone(base))
      for (const [path, values] of mutations) {
        for (const value of values) messages.push(JSON.parse(mutated(base, path, value)) as Record<string, unknown>)
      }
      // What object spreads of a mapped message can leave behind: keys present with an undefined value.
      for (const key of ['userId', 'anonymousId', 'context', 'traits', 'properties', 'timestamp', 'messageId']) {
        messages.push({ ...structuredClone(base), [key]: undefined })
      }
      messages.push({ ...structuredClone(base), userId: undefined, anonymousId: undefined })
    }
    let accepted = 0
    let rejected = 0
    for (const message of messages) {
      const bytes = Buffer.byteLength(JSON.stringify(message))
      const built = validateBuiltMessage(message, bytes)
      const reference = validateMessage(message, bytes)
      expect({ message, ok: built.ok }).toEqual({ message, ok: reference.ok })
      if (built.ok) accepted++
      else {
        expect(built.errors).toEqual(reference.ok ? [] : reference.errors)
        rejected++
      }
    }
    expect(accepted).toBeGreaterThan(100)
    expect(rejected).toBeGreaterThan(100)
  })

  it('refuses a message over the size limit it is given, without the schema', () => {
    const result = validateBuiltMessage(structuredClone(bases[0]!), 64 * 1024 + 1)
    expect(result).toEqual({ ok: false, errors: ['/: message is 65537 bytes, over the 65536-byte limit'] })
  })
})
