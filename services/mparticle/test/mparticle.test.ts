import { loadConfig } from '@lookstream/config'
import { PermanentError, type EncodedItem } from '@lookstream/destination'
import { type CanonicalMessage } from '@lookstream/events'
import { describe, expect, it } from 'vitest'
import { mparticle, schedule, sourceId, toBatch, type MparticleBatch } from '../src/mparticle.ts'

const MESSAGE_ID = 'f0e1d2c3-0000-5000-8000-000000000001'
const integrations = {
  All: false,
  mParticle: { connection: 'default', environment: 'production', dataType: 'user_data', eventType: 'other' },
} as const

const profile: CanonicalMessage = {
  type: 'identify',
  messageId: MESSAGE_ID,
  userId: 'cust_123',
  traits: { 'looker_users.ltv': 150, 'looker_users.plan': 'annual', 'looker_users.gone': null },
  context: {
    lookstream: { sendId: 's-1', row: 4, action: 'mparticle' },
    identities: { customer_id: 'cust_123', email: 'a@b.com' },
    device: { brand: 'Acme' },
  } as CanonicalMessage['context'],
  timestamp: '2026-06-01T06:00:00Z',
  integrations,
}

const event: CanonicalMessage = {
  type: 'track',
  messageId: 'row-7-of-a-producer-without-uuids',
  anonymousId: 'email:a@b.com',
  event: 'Subscription Renewed',
  properties: { 'looker_orders.revenue': 99.5, 'looker_orders.plan': 'annual' },
  context: {
    identities: { email: 'a@b.com' },
    traits: { 'looker_users.tier': 'gold' },
    mParticle: { custom_event_type: 'transaction', timestamp_unixtime_ms: '1748757600000', session_id: 42 },
  } as CanonicalMessage['context'],
  timestamp: '2026-06-01T06:00:00Z',
  integrations: { All: false, mParticle: { ...integrations.mParticle, dataType: 'event_data' } },
}

function encode(batch: MparticleBatch): EncodedItem<MparticleBatch> {
  const json = JSON.stringify(batch)
  return { item: batch, json, bytes: Buffer.byteLength(json) }
}

function reason(result: MparticleBatch | PermanentError): string {
  if (!(result instanceof PermanentError)) throw new Error('expected a rejection')
  return `${result.code}: ${result.message}`
}

describe('mparticle mapping', () => {
  it('maps a profile row to one batch: identities, user attributes (nulls left out), device_info, no events', () => {
    expect(toBatch(profile)).toEqual({
      environment: 'production',
      schema_version: 2,
      source_request_id: MESSAGE_ID,
      user_identities: { customer_id: 'cust_123', email: 'a@b.com' },
      user_attributes: { 'looker_users.ltv': 150, 'looker_users.plan': 'annual' },
      device_info: { brand: 'Acme' },
      events: [],
    })
  })

  it('maps an event row to a custom event with its type, attributes, event data and a UUID source id', () => {
    const batch = toBatch(event) as MparticleBatch
    const id = sourceId(event.messageId)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(sourceId(event.messageId)).toBe(id)
    expect(batch).toEqual({
      environment: 'production',
      schema_version: 2,
      source_request_id: id,
      user_identities: { email: 'a@b.com' },
      user_attributes: { 'looker_users.tier': 'gold' },
      events: [
        {
          event_type: 'custom_event',
          data: {
            event_name: 'Subscription Renewed',
            custom_event_type: 'transaction',
            source_message_id: id,
            timestamp_unixtime_ms: 1748757600000,
            session_id: 42,
            custom_attributes: { 'looker_orders.revenue': 99.5, 'looker_orders.plan': 'annual' },
          },
        },
      ],
    })
  })

  it('takes customer_id from userId for producers that send no identities, and development unless production', () => {
    const plain: CanonicalMessage = {
      type: 'identify',
      messageId: MESSAGE_ID,
      userId: 'u-9',
      traits: { plan: 'pro' },
      timestamp: '2026-06-01T06:00:00Z',
      integrations: { All: false, mParticle: true },
    }
    expect(toBatch(plain)).toMatchObject({ environment: 'development', user_identities: { customer_id: 'u-9' } })
  })

  it('rejects each row that would break an mParticle limit, with the reason, instead of letting mParticle drop it', () => {
    const noIdentity = { ...profile, userId: undefined, context: { identities: {} } } as CanonicalMessage
    expect(reason(toBatch(noIdentity))).toBe(
      'LS_DEST_MISSING_IDENTITY: the row has no mParticle identity (customer_id, email, other, …)',
    )
    const badType = { ...event, context: { ...event.context, mParticle: { custom_event_type: 'purchase' } } }
    expect(reason(toBatch(badType))).toBe(
      'LS_DEST_UNSUPPORTED_VALUE: custom_event_type must be one of navigation, location, search, transaction, user_content, user_preference, social, other, media',
    )
    const long = { ...profile, traits: { 'looker_users.bio': 'x'.repeat(4097) } } as CanonicalMessage
    expect(reason(toBatch(long))).toBe(
      `LS_DEST_UNSUPPORTED_VALUE: user attribute "looker_users.bio" is 4097 characters, over mParticle's 4096`,
    )
    const many = {
      ...event,
      properties: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`a${i}`, i])),
    } as CanonicalMessage
    expect(reason(toBatch(many))).toBe(
      "LS_DEST_UNSUPPORTED_VALUE: 101 event attributes, over mParticle's 100 per event",
    )
    const nested = { ...event, properties: { 'looker_x.obj': { a: 1 } } } as CanonicalMessage
    expect(reason(toBatch(nested))).toBe(
      'LS_DEST_UNSUPPORTED_VALUE: event attribute "looker_x.obj" holds an object, which mParticle does not take there',
    )
    const longName = { ...event, event: 'e'.repeat(257) } as CanonicalMessage
    expect(reason(toBatch(longName))).toBe(
      "LS_DEST_UNSUPPORTED_VALUE: event name of 257 characters is over mParticle's 256 (it would be cut)",
    )
    const list = { ...profile, traits: { tags: Array.from({ length: 1001 }, () => 't') } } as CanonicalMessage
    expect(reason(toBatch(list))).toBe(
      `LS_DEST_UNSUPPORTED_VALUE: user attribute "tags" is a list of 1001 entries, over mParticle's 1000`,
    )
    const group: CanonicalMessage = {
      type: 'group',
      messageId: MESSAGE_ID,
      userId: 'u',
      groupId: 'g',
      timestamp: '2026-06-01T06:00:00Z',
      integrations: { All: false, mParticle: true },
    }
    expect(reason(toBatch(group))).toBe(
      'LS_DEST_UNSUPPORTED_MESSAGE: mParticle takes user profiles and events; a group message has no place there',
    )
  })
})

describe('mparticle requests and responses', () => {
  const config = loadConfig(mparticle.config, {
    MPARTICLE_API_KEY: 'k',
    MPARTICLE_API_SECRET: 's',
    MPARTICLE_CONNECTIONS: JSON.stringify({ eu: { apiKey: 'k2', apiSecret: 's2', pod: 'EU1' } }),
  })
  const connections = mparticle.connections(config)
  const connection = connections.get('default')!
  const items = [encode(toBatch(profile) as MparticleBatch), encode(toBatch(event) as MparticleBatch)]
  const sent = mparticle.buildRequest(items, connection, new Date())
  const response = (status: number, headers: Record<string, string> = {}, body = '') => ({ status, headers, body })

  it('resolves the default connection (US1) and named ones by pod, each with its own key budget', () => {
    expect(connection).toMatchObject({
      endpoint: 'https://s2s.us1.mparticle.com/v2',
      rateLimitRps: 260,
      itemRatePerSecond: 260,
      maxBatchItems: 10,
      authorization: `Basic ${Buffer.from('k:s').toString('base64')}`,
    })
    expect(connections.get('eu')).toMatchObject({ endpoint: 'https://s2s.eu1.mparticle.com/v2' })
    expect(connections.get('eu')!.rateLimitScope).not.toBe(connection.rateLimitScope)
    expect(mparticle.allowedHosts(config)).toContain('s2s.eu1.mparticle.com')
  })

  it('schedules a limit so that no one-second window can hold more: small requests, the limit less one of them', () => {
    expect(schedule(270)).toEqual({ batchesPerRequest: 10, batchesPerSecond: 260 })
    expect(schedule(100_000)).toEqual({ batchesPerRequest: 100, batchesPerSecond: 99_900 })
    expect(schedule(5)).toEqual({ batchesPerRequest: 1, batchesPerSecond: 4 })
    for (const limit of [5, 27, 100, 270, 1000]) {
      const { batchesPerRequest, batchesPerSecond } = schedule(limit)
      expect(batchesPerSecond + batchesPerRequest).toBeLessThanOrEqual(limit)
    }
  })

  it('posts the batches as one JSON array to /bulkevents with Basic key:secret', () => {
    expect(sent.url).toBe('https://s2s.us1.mparticle.com/v2/bulkevents')
    expect(sent.headers.authorization).toBe(`Basic ${Buffer.from('k:s').toString('base64')}`)
    expect(JSON.parse(sent.body)).toEqual(items.map((item) => item.item))
  })

  it('classifies 202 as delivered, 400/413 as bisect, 401/403 as auth, 429 with Retry-After and 5xx as retryable', () => {
    expect(mparticle.classify(response(202), items, sent)).toEqual({
      kind: 'items',
      outcomes: [{ kind: 'delivered' }, { kind: 'delivered' }],
    })
    expect(mparticle.classify(response(400, {}, '{"errors":[]}'), items, sent).kind).toBe('split')
    expect(mparticle.classify(response(413), items, sent).kind).toBe('split')
    expect(mparticle.classify(response(403), items, sent)).toMatchObject({
      outcomes: [{ kind: 'auth' }, { kind: 'auth' }],
    })
    expect(mparticle.classify(response(429, { 'retry-after': '3' }), items, sent)).toMatchObject({
      outcomes: [{ kind: 'retryable', retryAfterMs: 3000, code: 'LS_DEST_RATE_LIMITED' }, { kind: 'retryable' }],
    })
    expect(mparticle.classify(response(429), items, sent)).toMatchObject({
      outcomes: [{ kind: 'retryable', code: 'LS_DEST_RATE_LIMITED' }, { kind: 'retryable' }],
    })
    expect(mparticle.classify(response(503), items, sent)).toMatchObject({
      outcomes: [{ kind: 'retryable', code: 'LS_DEST_RETRYABLE' }, { kind: 'retryable' }],
    })
  })
})
