import { describe, expect, it } from 'vitest'
import {
  DESTINATIONS,
  HEADERS,
  INTEGRATION_KEYS,
  TOPICS,
  destinationsOf,
  dlqTopic,
  headersFor,
  integrationOptions,
  keyFor,
  parseDestinationsHeader,
  retryTopic,
  sendEventHeaders,
  DestinationIdSchema,
  topicFor,
  type CanonicalMessage,
  type Integrations,
} from '../src/index.ts'

const base = { messageId: 'm1', timestamp: '2026-06-01T06:00:00Z' }

function identify(integrations: Integrations, ids: { userId?: string; anonymousId?: string } = { userId: 'u1' }) {
  return { type: 'identify', ...base, ...ids, integrations } satisfies CanonicalMessage
}

describe('topics and keys', () => {
  it('names the topics', () => {
    expect(TOPICS).toEqual({
      identify: 'lookstream.identify.v1',
      track: 'lookstream.track.v1',
      group: 'lookstream.group.v1',
      sends: 'lookstream.sends.v1',
    })
    expect(retryTopic('recurly-engage')).toBe('lookstream.retry.recurly-engage')
    expect(dlqTopic('braze')).toBe('lookstream.dlq.braze')
  })

  it('routes each type to its topic', () => {
    expect(topicFor({ type: 'identify' })).toBe('lookstream.identify.v1')
    expect(topicFor({ type: 'track' })).toBe('lookstream.track.v1')
    expect(topicFor({ type: 'group' })).toBe('lookstream.group.v1')
  })

  it('keys by userId, else anonymousId, and by groupId for group', () => {
    expect(keyFor(identify({}, { userId: 'u1', anonymousId: 'a1' }))).toBe('u1')
    expect(keyFor(identify({}, { anonymousId: 'a1' }))).toBe('a1')
    expect(keyFor({ type: 'group', ...base, userId: 'u1', groupId: 'g1', integrations: {} })).toBe('g1')
    expect(() => keyFor(identify({}, {}))).toThrow(/neither userId nor anonymousId/)
  })

  it('maps every destination to its Segment-style integration key', () => {
    expect(DESTINATIONS.map((id) => INTEGRATION_KEYS[id])).toEqual([
      'Segment',
      'Braze',
      'Heap',
      'mParticle',
      'Recurly Engage',
    ])
  })
})

describe('destinationsOf', () => {
  it('with All false, selects only listed destinations that are not false', () => {
    expect(destinationsOf(identify({ All: false, Braze: { connection: 'eu' }, Heap: true, Segment: false }))).toEqual([
      'braze',
      'heap',
    ])
    expect(destinationsOf(identify({ All: false }))).toEqual([])
  })

  it('with All true or absent, selects every destination except those set false', () => {
    expect(destinationsOf(identify({}))).toEqual([...DESTINATIONS])
    expect(destinationsOf(identify({ All: true, mParticle: false, 'Recurly Engage': false }))).toEqual([
      'segment',
      'braze',
      'heap',
    ])
  })
})

describe('integrationOptions', () => {
  it('returns the options with the connection resolved to default', () => {
    const message = identify({ All: false, Braze: { identifierKey: 'braze_id' }, Segment: true })
    expect(integrationOptions(message, 'braze')).toEqual({ identifierKey: 'braze_id', connection: 'default' })
    expect(integrationOptions(message, 'segment')).toEqual({ connection: 'default' })
    expect(integrationOptions(message, 'heap')).toBeUndefined()
    expect(integrationOptions(identify({ Heap: { connection: 'eu', joinKey: 'email' } }), 'heap')).toEqual({
      connection: 'eu',
      joinKey: 'email',
    })
  })
  it('answers for exactly the destinations destinationsOf lists, for every All and setting combination', () => {
    const settings = [undefined, true, false, {}] as const
    for (const all of [undefined, true, false] as const) {
      for (const setting of settings) {
        for (const id of DESTINATIONS) {
          const integrations: Integrations = {}
          if (all !== undefined) integrations.All = all
          if (setting !== undefined) (integrations as Record<string, unknown>)[INTEGRATION_KEYS[id]] = setting
          const message = identify(integrations)
          expect(integrationOptions(message, id) !== undefined, `All ${all}, ${id} ${JSON.stringify(setting)}`).toBe(
            destinationsOf(message).includes(id),
          )
        }
      }
    }
  })
})

describe('headers', () => {
  it('sets destinations, schema, producer and the send id', () => {
    const message = {
      ...identify({ All: false, Braze: {}, Heap: {} }),
      context: { lookstream: { sendId: 'snd_1', row: 4, action: 'braze' } },
    }
    expect(headersFor(message, { producer: 'ingress' })).toEqual({
      [HEADERS.destinations]: 'braze,heap',
      [HEADERS.schema]: 'identify.v1',
      [HEADERS.producer]: 'ingress',
      [HEADERS.sendId]: 'snd_1',
    })
    expect(headersFor(identify({ All: false, Segment: true }), { producer: 'billing' })).toEqual({
      'lookstream-destinations': 'segment',
      'lookstream-schema': 'identify.v1',
      'lookstream-producer': 'billing',
    })
  })

  it('parses the destinations header, ignoring unknown ids', () => {
    expect(parseDestinationsHeader('braze, heap,hubspot')).toEqual(['braze', 'heap'])
    expect(parseDestinationsHeader('')).toEqual([])
    expect(parseDestinationsHeader(undefined)).toEqual([])
  })
})

describe('send events', () => {
  it('have their own headers, keyed by the send id', () => {
    expect(sendEventHeaders({ sendId: 'snd_1' }, { producer: 'ingress' })).toEqual({
      'lookstream-schema': 'send.v1',
      'lookstream-producer': 'ingress',
      'lookstream-send-id': 'snd_1',
    })
  })

  it('name exactly the known destinations', () => {
    expect(DestinationIdSchema.anyOf.map((literal) => literal.const)).toEqual([...DESTINATIONS])
  })
})
