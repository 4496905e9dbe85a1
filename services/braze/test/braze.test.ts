import { ConfigError, loadConfig } from '@lookstream/config'
import { PermanentError, type BuiltRequest, type EncodedItem } from '@lookstream/destination'
import { type CanonicalMessage } from '@lookstream/events'
import { describe, expect, it } from 'vitest'
import {
  braze,
  brazeItem,
  brazeRowConnection,
  toBrazeItem,
  type BrazeConnection,
  type BrazeItem,
} from '../src/braze.ts'
import { BrazeConfig } from '../src/config.ts'

const connection: BrazeConnection = {
  name: 'default',
  endpoint: 'https://rest.iad-01.braze.com',
  rateLimitRps: 1000,
  rateLimitScope: 'connection:default',
  authorization: 'Bearer key',
  maxObjects: 75,
  maxArrayLength: 25,
  bulk: false,
}

function identify(
  traits: Record<string, unknown>,
  options: Record<string, unknown> = {},
  userId: string | null = 'cust_123',
): CanonicalMessage {
  return {
    type: 'identify',
    messageId: 'f0e1d2c3-0000-5000-8000-000000000001',
    ...(userId === null ? { anonymousId: 'anon-1' } : { userId }),
    traits,
    context: { lookstream: { sendId: 's-1', row: 4, action: 'braze' } },
    timestamp: '2026-06-01T06:00:00Z',
    integrations: { All: false, Braze: { connection: 'default', identifierKey: 'external_id', ...options } },
  }
}

function attributesOf(message: CanonicalMessage, conn: BrazeConnection = connection): unknown {
  const item = braze.toItem(message, conn)
  if (item instanceof PermanentError) throw item
  // As the runtime encodes it (process-records.ts): the destination's encode.
  return JSON.parse(braze.encode!(item)) as unknown
}

function rejection(message: CanonicalMessage): PermanentError {
  const item = braze.toItem(message, connection)
  if (!(item instanceof PermanentError)) throw new Error('expected a rejection')
  return item
}

function encode(attributes: Record<string, unknown>): EncodedItem<BrazeItem> {
  const item = brazeItem(attributes, 75)
  const json = JSON.stringify(item)
  return { item, json, bytes: Buffer.byteLength(json) }
}

function request(count: number): { items: EncodedItem<BrazeItem>[]; built: BuiltRequest } {
  const items = Array.from({ length: count }, (_, i) => encode({ external_id: `u${i}`, plan: 'x' }))
  return { items, built: braze.buildRequest(items, connection, new Date()) }
}

function response(status: number, body: unknown = '', headers: Record<string, string> = {}) {
  return { status, headers, body: typeof body === 'string' ? body : JSON.stringify(body) }
}

describe('braze.toItem', () => {
  it('encodes an item as its attributes object alone, byte for byte as the item serialises itself', () => {
    const message = identify(
      { first_name: 'Ada', tags: ['a', 'b'], 'Lifetime Value': 150, note: null },
      { nulls: 'send' },
    )
    for (const conn of [connection, { ...connection, maxObjects: 10 }, { ...connection, bulk: true }]) {
      const item = braze.toItem(message, conn)
      if (item instanceof PermanentError) throw item
      const json = braze.encode!(item)
      expect(json).toBe(JSON.stringify(item))
      expect(json).not.toMatch(/maxObjects|bulk/)
      expect(JSON.parse(json)).toEqual(item.attributes)
    }
  })

  it('shares one export label operation across the rows of a send, unchanged by encoding them', () => {
    const first = braze.toItem(identify({ a: 1 }), connection) as BrazeItem
    const second = braze.toItem(identify({ b: 2 }), connection) as BrazeItem
    expect(first.attributes.looker_export).toBe(second.attributes.looker_export)
    braze.encode!(first)
    expect(second.attributes.looker_export).toEqual({ add: ['LOOKER_EXPORT'] })
  })

  it('maps an identify to the action hub shape: identifier, update-only, export label, every tag as named', () => {
    expect(attributesOf(identify({ first_name: 'Ada', 'Lifetime Value': 150, vip: false }))).toEqual({
      external_id: 'cust_123',
      _update_existing_only: true,
      looker_export: { add: ['LOOKER_EXPORT'] },
      first_name: 'Ada',
      'Lifetime Value': 150,
      vip: false,
    })
    // The seed's key order: identifier, update mode, export label, then the attributes.
    expect(Object.keys(attributesOf(identify({ b: 1, a: 2 })) as object)).toEqual([
      'external_id',
      '_update_existing_only',
      'looker_export',
      'b',
      'a',
    ])
  })

  it('uses the send options: braze_id as the key, its own export label, creating profiles when asked', () => {
    expect(
      attributesOf(
        identify(
          { plan: 'annual' },
          { identifierKey: 'braze_id', exportLabel: 'winback_q3', updateExistingOnly: false },
        ),
      ),
    ).toEqual({
      braze_id: 'cust_123',
      _update_existing_only: false,
      looker_export: { add: ['winback_q3'] },
      plan: 'annual',
    })
  })

  it('skips nulls by default and sends them (Braze removes the attribute) when the send says so', () => {
    expect(attributesOf(identify({ plan: null, score: 0 }))).toEqual({
      external_id: 'cust_123',
      _update_existing_only: true,
      looker_export: { add: ['LOOKER_EXPORT'] },
      score: 0,
    })
    expect(attributesOf(identify({ plan: null, score: 0 }, { nulls: 'send' }))).toMatchObject({ plan: null, score: 0 })
  })

  it('keeps strings up to 255 characters (counted as characters, not UTF-16 units) and arrays of strings', () => {
    const emoji = '😀'.repeat(255)
    expect(attributesOf(identify({ note: 'x'.repeat(255), emoji, tags: ['a', 'b', 3] }))).toMatchObject({
      note: 'x'.repeat(255),
      emoji,
      tags: ['a', 'b', 3],
    })
  })

  it('rejects values Braze cannot take, naming the attribute and the kind of value but never the value', () => {
    const secret = 'confidential-value'
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ address: { city: secret } }, /attribute "address" holds an object/],
      [{ note: `${secret}${'x'.repeat(300)}` }, /attribute "note" holds a string over 255 characters/],
      [{ first_name: [secret] }, /"first_name" is a single-value profile field and holds an array/],
      [{ tags: [secret, { a: 1 }] }, /"tags" holds an array containing an object/],
      [{ tags: [null] }, /"tags" holds an array containing null/],
      [{ tags: ['y'.repeat(256)] }, /"tags" holds an array with a string over 255/],
      [{ tags: Array.from({ length: 26 }, (_, i) => `t${i}`) }, /array of 26 values, over the workspace's 25/],
    ]
    for (const [traits, reason] of cases) {
      const error = rejection(identify(traits))
      expect(error.message).toMatch(reason)
      expect(error.message).not.toContain(secret)
      expect(error.code).toBe('LS_DEST_UNSUPPORTED_VALUE')
    }
  })

  it('lists every bad attribute of a row in one reason', () => {
    const error = rejection(identify({ a: {}, b: [[1]], ok: 1 }))
    expect(error.message).toMatch(/"a" holds an object.*"b" holds an array containing an array/)
  })

  it('refuses trait names that would overwrite the identifier, the update mode or the export label', () => {
    for (const name of ['external_id', 'braze_id', '_update_existing_only', 'looker_export', 'user_alias']) {
      expect(rejection(identify({ [name]: 'x' })).message).toMatch(new RegExp(`"${name}" is reserved`))
    }
    expect(rejection(identify({ $bad: 1 })).message).toMatch(/"\$bad" is not valid at Braze/)
  })

  it('refuses messages without a userId and messages other than identify, with the reason', () => {
    expect(rejection(identify({}, {}, null))).toMatchObject({ code: 'LS_DEST_MISSING_IDENTITY' })
    const track: CanonicalMessage = {
      type: 'track',
      messageId: 'm',
      userId: 'u',
      event: 'e',
      timestamp: '2026-06-01T06:00:00Z',
      integrations: { Braze: true },
    }
    expect(rejection(track)).toMatchObject({ code: 'LS_DEST_UNSUPPORTED_MESSAGE' })
  })

  it('uses the connection array cap and carries the connection object limit as the batch key', () => {
    const narrow = { ...connection, maxArrayLength: 2, maxObjects: 50 }
    expect(braze.toItem(identify({ tags: ['a', 'b', 'c'] }), narrow)).toBeInstanceOf(PermanentError)
    const item = braze.toItem(identify({ tags: ['a', 'b'] }), narrow) as BrazeItem
    expect(braze.batchKey!(item)).toBe('50')
    expect(braze.limitsFor!('50').maxBatchItems).toBe(50)
    expect(braze.limitsFor!('75').maxBatchBytes).toBeLessThanOrEqual(4 * 1024 * 1024)
  })

  it('on a bulk connection: the batch key says so, and a batch holds up to 1,000 objects and under 2 MB', () => {
    const bulk = { ...connection, bulk: true, maxObjects: 1000 }
    const item = braze.toItem(identify({ plan: 'x' }), bulk) as BrazeItem
    expect(braze.batchKey!(item)).toBe('bulk:1000')
    const limits = braze.limitsFor!('bulk:1000')
    expect(limits.maxBatchItems).toBe(1000)
    expect(limits.maxBatchBytes).toBeLessThan(2 * 1024 * 1024)
    expect(limits.maxItemBytes).toBeLessThan(2 * 1024 * 1024)
    expect(braze.limitsFor!('bulk:5000').maxBatchItems).toBe(1000)
    expect(braze.limitsFor!('1000').maxBatchItems).toBe(75)
  })
})

describe('braze.buildRequest', () => {
  it('POSTs {"attributes":[…]} to /users/track with the Bearer key and the layout of the attributes array', () => {
    const { items, built } = request(3)
    expect(built.url).toBe('https://rest.iad-01.braze.com/users/track')
    expect(built.method).toBe('POST')
    expect(built.headers).toEqual({ 'content-type': 'application/json', authorization: 'Bearer key' })
    expect(JSON.parse(built.body)).toEqual({ attributes: items.map((item) => item.item.attributes) })
    expect(built.layout).toEqual({ attributes: [0, 1, 2] })
  })
})

describe('braze.classify', () => {
  it('delivers every item on 201 success and on 202 queued', () => {
    const { items, built } = request(2)
    for (const res of [
      response(201, { message: 'success', attributes_processed: 2 }),
      response(202, { message: 'queued' }),
    ]) {
      expect(braze.classify(res, items, built)).toEqual({
        kind: 'items',
        outcomes: [{ kind: 'delivered' }, { kind: 'delivered' }],
      })
    }
  })

  it('2xx with errors[]: exactly the named items are permanent with Braze reason, the rest delivered', () => {
    const { items, built } = request(4)
    const body = {
      message: 'success',
      errors: [
        { type: "The value provided for the 'email' field is not a valid email.", input_array: 'attributes', index: 1 },
        { type: "'gender' is not valid", input_array: 'attributes', index: 3 },
      ],
    }
    const result = braze.classify(response(201, body), items, built)
    expect(result).toEqual({
      kind: 'items',
      outcomes: [
        { kind: 'delivered' },
        {
          kind: 'permanent',
          reason: "Braze rejected it: The value provided for the 'email' field is not a valid email.",
          status: 201,
          code: 'LS_DEST_REJECTED',
        },
        { kind: 'delivered' },
        {
          kind: 'permanent',
          reason: "Braze rejected it: 'gender' is not valid",
          status: 201,
          code: 'LS_DEST_REJECTED',
        },
      ],
    })
  })

  it('maps errors through the layout, not by assuming body order equals item order', () => {
    const items = [encode({ external_id: 'a' }), encode({ external_id: 'b' })]
    const built: BuiltRequest = { ...braze.buildRequest(items, connection, new Date()), layout: { attributes: [1, 0] } }
    const result = braze.classify(
      response(201, { message: 'success', errors: [{ type: 'bad', input_array: 'attributes', index: 0 }] }),
      items,
      built,
    )
    expect(result.kind === 'items' && result.outcomes.map((o) => o.kind)).toEqual(['delivered', 'permanent'])
  })

  it('fatal 400 with errors[]: the named items are permanent, the others are sent again', () => {
    const { items, built } = request(3)
    const body = {
      message: "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.",
      errors: [{ type: "'external_id' is not valid", input_array: 'attributes', index: 2 }],
    }
    const result = braze.classify(response(400, body), items, built)
    expect(result.kind).toBe('items')
    if (result.kind !== 'items') return
    expect(result.outcomes.map((o) => o.kind)).toEqual(['retryable', 'retryable', 'permanent'])
    expect(result.outcomes[2]).toMatchObject({ reason: "Braze rejected it: 'external_id' is not valid", status: 400 })
  })

  it('bisects a 400 without errors[], a 413, and errors[] that cannot be placed', () => {
    const { items, built } = request(3)
    expect(braze.classify(response(400, { message: 'Max Input Length Exceeded' }), items, built)).toEqual({
      kind: 'split',
      reason: 'HTTP 400: Max Input Length Exceeded',
    })
    expect(braze.classify(response(413, { message: 'Request entity too large' }), items, built).kind).toBe('split')
    const unplaced = { message: 'success', errors: [{ type: 'x', input_array: 'events', index: 0 }] }
    expect(braze.classify(response(201, unplaced), items, built).kind).toBe('split')
    const outOfRange = { message: 'success', errors: [{ type: 'x', input_array: 'attributes', index: 9 }] }
    expect(braze.classify(response(201, outOfRange), items, built).kind).toBe('split')
  })

  it('401, 403 and 404 pause the connection (auth), never dead-letter', () => {
    const { items, built } = request(2)
    for (const status of [401, 403, 404]) {
      const result = braze.classify(response(status, { message: 'Invalid API key' }), items, built)
      expect(result).toMatchObject({
        kind: 'items',
        outcomes: [
          { kind: 'auth', status },
          { kind: 'auth', status },
        ],
      })
    }
  })

  it('429 honours Retry-After, X-RateLimit-Retry-After and X-RateLimit-Reset (epoch or seconds)', () => {
    const { items, built } = request(1)
    const cases: [Record<string, string>, number, number][] = [
      [{ 'retry-after': '2' }, 2000, 2000],
      [{ 'x-ratelimit-retry-after': '3' }, 3000, 3000],
      [{ 'x-ratelimit-reset': '4' }, 4000, 4000],
      [{ 'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 5) }, 3500, 6000],
    ]
    for (const [headers, min, max] of cases) {
      const result = braze.classify(response(429, { message: 'API rate limit exceeded' }, headers), items, built)
      if (result.kind !== 'items') throw new Error('expected items')
      const outcome = result.outcomes[0]!
      expect(outcome).toMatchObject({ kind: 'retryable', status: 429, code: 'LS_DEST_RATE_LIMITED' })
      const wait = outcome.kind === 'retryable' ? outcome.retryAfterMs : undefined
      expect(wait).toBeGreaterThanOrEqual(min)
      expect(wait).toBeLessThanOrEqual(max)
    }
  })

  it('5xx and 408 are retryable; another 4xx is permanent for the whole request', () => {
    const { items, built } = request(1)
    expect(braze.classify(response(503, 'Service Unavailable'), items, built)).toMatchObject({
      outcomes: [{ kind: 'retryable', status: 503, reason: 'HTTP 503: Service Unavailable' }],
    })
    expect(braze.classify(response(408), items, built)).toMatchObject({ outcomes: [{ kind: 'retryable' }] })
    expect(braze.classify(response(422, { message: 'nope' }), items, built)).toMatchObject({
      outcomes: [{ kind: 'permanent', status: 422, code: 'LS_DEST_REJECTED' }],
    })
  })
})

describe('braze config and connections', () => {
  const load = (env: Record<string, string>) => braze.connections(loadConfig(BrazeConfig, env))

  it('builds the default connection with 3,000 requests per 3 s and 75 objects', () => {
    const connections = load({ BRAZE_API_KEY: 'k', BRAZE_REST_ENDPOINT: 'https://rest.fra-01.braze.eu/' })
    expect(connections.get('default')).toMatchObject({
      endpoint: 'https://rest.fra-01.braze.eu',
      rateLimitRps: 1000,
      authorization: 'Bearer k',
      maxObjects: 75,
      maxArrayLength: 25,
    })
  })

  it('named connections: one rate-limit scope per workspace, shared by connections with the same key or workspace', () => {
    const connections = load({
      BRAZE_API_KEY: 'k1',
      BRAZE_REST_ENDPOINT: 'https://rest.iad-01.braze.com',
      BRAZE_CONNECTIONS: JSON.stringify({
        same: { apiKey: 'k1', restEndpoint: 'https://rest.iad-01.braze.com' },
        other: { apiKey: 'k2', restEndpoint: 'https://rest.iad-01.braze.com', maxObjectsPerRequest: 50 },
        eu1: { apiKey: 'k3', restEndpoint: 'https://rest.fra-01.braze.eu', workspace: 'eu' },
        eu2: { apiKey: 'k4', restEndpoint: 'https://rest.fra-01.braze.eu', workspace: 'eu', rateLimitRequests: 300 },
      }),
    })
    expect(connections.get('same')!.rateLimitScope).toBe(connections.get('default')!.rateLimitScope)
    expect(connections.get('other')!.rateLimitScope).not.toBe(connections.get('default')!.rateLimitScope)
    expect(connections.get('other')!.maxObjects).toBe(50)
    expect(connections.get('eu1')!.rateLimitScope).toBe('workspace:eu')
    expect(connections.get('eu2')!.rateLimitScope).toBe('workspace:eu')
    expect(connections.get('eu2')!.rateLimitRps).toBe(100)
  })

  it('BRAZE_BULK and "bulk": /users/track/bulk with 1,000 objects and 50 requests a second on a budget of its own', () => {
    const connections = load({
      BRAZE_API_KEY: 'k1',
      BRAZE_REST_ENDPOINT: 'https://rest.iad-01.braze.com',
      BRAZE_BULK: 'true',
      BRAZE_CONNECTIONS: JSON.stringify({
        track: { apiKey: 'k1', restEndpoint: 'https://rest.iad-01.braze.com' },
        backfill: {
          apiKey: 'k2',
          restEndpoint: 'https://rest.iad-01.braze.com',
          workspace: 'main',
          bulk: true,
          maxObjectsPerRequest: 500,
          bulkRequestsPerSecond: 20,
        },
        daily: { apiKey: 'k3', restEndpoint: 'https://rest.iad-01.braze.com', workspace: 'main' },
      }),
    })
    expect(connections.get('default')).toMatchObject({ bulk: true, maxObjects: 1000, rateLimitRps: 50 })
    expect(connections.get('track')).toMatchObject({ bulk: false, maxObjects: 75, rateLimitRps: 1000 })
    // Same key and endpoint, one workspace: the two endpoints' budgets stay apart.
    expect(connections.get('default')!.rateLimitScope).toBe(`${connections.get('track')!.rateLimitScope}:bulk`)
    expect(connections.get('backfill')).toMatchObject({ bulk: true, maxObjects: 500, rateLimitRps: 20 })
    expect(connections.get('backfill')!.rateLimitScope).toBe('workspace:main:bulk')
    expect(connections.get('daily')!.rateLimitScope).toBe('workspace:main')
    const built = braze.buildRequest([encode({ external_id: 'u1' })], connections.get('default')!, new Date())
    expect(built.url).toBe('https://rest.iad-01.braze.com/users/track/bulk')
    expect(braze.buildRequest([encode({ external_id: 'u1' })], connections.get('track')!, new Date()).url).toBe(
      'https://rest.iad-01.braze.com/users/track',
    )
    // More than 75 objects only with bulk.
    expect(() =>
      load({
        BRAZE_CONNECTIONS: JSON.stringify({
          wide: { apiKey: 'k', restEndpoint: 'https://rest.iad-01.braze.com', maxObjectsPerRequest: 76 },
        }),
      }),
    ).toThrow(/at most 75/)
    expect(() => loadConfig(BrazeConfig, { BRAZE_BULK_MAX_OBJECTS_PER_REQUEST: '1001' })).toThrow()
  })

  it('refuses half a default connection, and http:// to a Braze host', () => {
    expect(() => load({ BRAZE_API_KEY: 'k' })).toThrow(ConfigError)
    expect(() => load({ BRAZE_API_KEY: 'k', BRAZE_REST_ENDPOINT: 'http://rest.iad-01.braze.com' })).toThrow(/https/)
    expect(() =>
      loadConfig(BrazeConfig, { BRAZE_REST_ENDPOINT: 'https://rest.iad-01.braze.com/users/track' }),
    ).toThrow()
    expect(() => loadConfig(BrazeConfig, { BRAZE_MAX_OBJECTS_PER_REQUEST: '76' })).toThrow()
  })

  it('allows the Braze instance hosts, and other hosts only when BRAZE_ALLOWED_HOSTS names them', () => {
    const hosts = braze.allowedHosts(loadConfig(BrazeConfig, {}))
    expect(hosts).toContain('rest.iad-01.braze.com')
    expect(hosts).toContain('rest.iad-08.braze.com')
    expect(hosts).toContain('rest.us-10.braze.com')
    expect(hosts).toContain('rest.fra-02.braze.eu')
    expect(hosts).not.toContain('127.0.0.1:4020')
    expect(braze.allowedHosts(loadConfig(BrazeConfig, { BRAZE_ALLOWED_HOSTS: '127.0.0.1:4020, Sim.Local' }))).toEqual(
      expect.arrayContaining(['127.0.0.1:4020', 'sim.local']),
    )
  })
})

describe('row limits announced in the destination registry', () => {
  it('publicSettings announces the limits toBrazeItem reads and brazeRowConnection reads them back', () => {
    const workspace: BrazeConnection = { ...connection, maxObjects: 50, maxArrayLength: 10 }
    const settings = braze.publicSettings!(workspace)
    expect(settings).toEqual({ maxObjectsPerRequest: '50', maxArrayLength: '10', bulk: 'false' })
    expect(JSON.stringify(settings)).not.toContain('key')
    expect(brazeRowConnection(settings)).toEqual({
      connection: { maxObjects: 50, maxArrayLength: 10, bulk: false },
      defaulted: [],
    })
    // A bulk connection announces itself and its larger limit; the rows checked from it batch as its own do.
    const bulkSettings = braze.publicSettings!({ ...connection, bulk: true, maxObjects: 1000 })
    const rebuilt = brazeRowConnection(bulkSettings).connection
    expect(rebuilt).toEqual({ maxObjects: 1000, maxArrayLength: 25, bulk: true })
    const bulkItem = toBrazeItem(identify({ plan: 'x' }), rebuilt) as BrazeItem
    expect(braze.batchKey!(bulkItem)).toBe('bulk:1000')
    // The same refusal from the rebuilt connection as from the service's own.
    const message = identify({ tags: Array.from({ length: 12 }, (_, i) => `t${i}`) })
    const fromRegistry = toBrazeItem(message, brazeRowConnection(settings).connection)
    const fromService = braze.toItem(message, workspace)
    expect(fromRegistry).toBeInstanceOf(PermanentError)
    expect((fromRegistry as PermanentError).message).toBe((fromService as PermanentError).message)
  })

  it("falls back to BrazeConfig's defaults, naming them, for settings missing or out of range", () => {
    expect(brazeRowConnection(undefined)).toEqual({
      connection: { maxObjects: 75, maxArrayLength: 25, bulk: false },
      defaulted: ['maxObjectsPerRequest 75', 'maxArrayLength 25'],
    })
    expect(brazeRowConnection({ maxObjectsPerRequest: '0', maxArrayLength: ['10'] })).toEqual({
      connection: { maxObjects: 75, maxArrayLength: 25, bulk: false },
      defaulted: ['maxObjectsPerRequest 75', 'maxArrayLength 25'],
    })
    expect(brazeRowConnection({ bulk: 'true' })).toEqual({
      connection: { maxObjects: 1000, maxArrayLength: 25, bulk: true },
      defaulted: ['maxObjectsPerRequest 1000', 'maxArrayLength 25'],
    })
    expect(brazeRowConnection({ maxObjectsPerRequest: '76', maxArrayLength: '101' }).defaulted).toHaveLength(2)
  })
})
