import { loadConfig } from '@lookstream/config'
import { PermanentError, type EncodedItem } from '@lookstream/destination'
import { type CanonicalMessage } from '@lookstream/events'
import { describe, expect, it } from 'vitest'
import {
  heap,
  heapRowConnection,
  requestItemsFor,
  TARGET,
  toHeapItem,
  toHeapProperties,
  type HeapConnection,
  type HeapItem,
} from '../src/index.ts'

const connection: HeapConnection = {
  name: 'default',
  endpoint: 'https://heapanalytics.com',
  rateLimitRps: 16,
  itemRatePerSecond: 245,
  appId: '111',
  appIds: new Set(['111', '222']),
  maxBatchItems: 100,
}

function identify(traits: Record<string, unknown>, heapOptions: Record<string, unknown> = {}): CanonicalMessage {
  return {
    type: 'identify',
    messageId: 'f0e1d2c3-0000-5000-8000-000000000001',
    userId: 'cust_123',
    traits,
    context: { lookstream: { sendId: 's-1', row: 4, action: 'heap' } },
    timestamp: '2026-06-01T06:00:00Z',
    integrations: { All: false, Heap: { connection: 'default', propertyType: 'user', ...heapOptions } },
  }
}

function group(traits: Record<string, unknown>, heapOptions: Record<string, unknown> = {}): CanonicalMessage {
  return {
    type: 'group',
    messageId: 'f0e1d2c3-0000-5000-8000-000000000002',
    groupId: 'acme',
    anonymousId: 'heap-account:acme',
    traits,
    timestamp: '2026-06-01T06:00:00Z',
    integrations: { All: false, Heap: { connection: 'default', propertyType: 'account', ...heapOptions } },
  }
}

function item(message: CanonicalMessage): HeapItem {
  const result = heap.toItem(message, connection)
  if (result instanceof PermanentError) throw new Error(`unexpected rejection: ${result.message}`)
  return result
}

function encode(value: HeapItem): EncodedItem<HeapItem> {
  const json = JSON.stringify(value)
  return { item: value, json, bytes: Buffer.byteLength(json) }
}

function rejection(message: CanonicalMessage): PermanentError {
  const result = heap.toItem(message, connection)
  if (!(result instanceof PermanentError)) throw new Error('expected a rejection')
  return result
}

const user = (traits: Record<string, unknown>, userId = 'cust_123') => encode(item({ ...identify(traits), userId }))

describe('Heap properties', () => {
  it('keeps strings and numbers, turns booleans into strings and leaves null out', () => {
    expect(
      toHeapProperties(
        { plan: 'annual', ltv: 150.5, zero: 0, neg: -3, paid: true, trial: false, gone: null },
        {
          kind: 'user',
          longValues: 'reject',
        },
      ),
    ).toEqual({ ok: true, properties: { plan: 'annual', ltv: 150.5, zero: 0, neg: -3, paid: 'true', trial: 'false' } })
  })

  it('flattens nested objects with dotted names, joins plain arrays with || and indexes arrays of objects', () => {
    const result = toHeapProperties(
      { address: { city: 'Paris', geo: { lat: 48.8 } }, tags: ['a', 2, true], items: [{ sku: 'x' }, { sku: 'y' }] },
      { kind: 'account', longValues: 'reject' },
    )
    expect(result).toEqual({
      ok: true,
      properties: {
        'address.city': 'Paris',
        'address.geo.lat': 48.8,
        tags: 'a||2||true',
        'items.0.sku': 'x',
        'items.1.sku': 'y',
      },
    })
  })

  it('rejects a string of 1,024 characters naming the property, not its value, unless the send truncates', () => {
    const long = 'é'.repeat(1024)
    expect(toHeapProperties({ Notes: long }, { kind: 'user', longValues: 'reject' })).toEqual({
      ok: false,
      reason: 'property "Notes" is 1024 characters; Heap takes fewer than 1024 (or send with long values truncated)',
    })
    const cut = toHeapProperties({ Notes: long, ok: 'x'.repeat(1023) }, { kind: 'user', longValues: 'truncate' })
    expect(cut).toEqual({ ok: true, properties: { Notes: 'é'.repeat(1023), ok: 'x'.repeat(1023) } })
  })

  it('never splits a surrogate pair when truncating', () => {
    const value = 'a'.repeat(1021) + '😀' + 'b'.repeat(10)
    const result = toHeapProperties({ v: value }, { kind: 'user', longValues: 'truncate' })
    expect(result.ok && result.properties.v).toBe('a'.repeat(1021) + '😀')
    const split = 'a'.repeat(1022) + '😀'
    const second = toHeapProperties({ v: split }, { kind: 'user', longValues: 'truncate' })
    expect(second.ok && second.properties.v).toBe('a'.repeat(1022))
  })

  it('sends any casing of email as email, and refuses a user property named any casing of id', () => {
    expect(toHeapProperties({ EMAIL: 'a@b.com' }, { kind: 'user', longValues: 'reject' })).toEqual({
      ok: true,
      properties: { email: 'a@b.com' },
    })
    expect(toHeapProperties({ Email: 'a@b.com', email: 'c@d.com' }, { kind: 'user', longValues: 'reject' })).toEqual({
      ok: false,
      reason: 'properties "Email" and "email" both become Heap property "email"',
    })
    for (const name of ['id', 'ID', 'Id', 'iD']) {
      expect(toHeapProperties({ [name]: 1 }, { kind: 'user', longValues: 'reject' })).toEqual({
        ok: false,
        reason: `property "${name}" is reserved by Heap (no user property may be named id)`,
      })
    }
    // Account properties are not covered by Heap's rule, and nested ids are other names.
    expect(toHeapProperties({ ID: 1 }, { kind: 'account', longValues: 'reject' }).ok).toBe(true)
    expect(toHeapProperties({ owner: { id: 1 } }, { kind: 'user', longValues: 'reject' })).toEqual({
      ok: true,
      properties: { 'owner.id': 1 },
    })
  })

  it('refuses clashing flattened names, empty names and nesting past ten levels', () => {
    expect(toHeapProperties({ 'a.b': 1, a: { b: 2 } }, { kind: 'user', longValues: 'reject' })).toMatchObject({
      ok: false,
      reason: 'properties "a.b" and "a.b" both become Heap property "a.b"',
    })
    expect(toHeapProperties({ '': 1 }, { kind: 'user', longValues: 'reject' })).toEqual({
      ok: false,
      reason: 'a property has an empty name',
    })
    let deep: Record<string, unknown> = { leaf: 1 }
    for (let i = 0; i < 11; i++) deep = { n: deep }
    expect(toHeapProperties(deep, { kind: 'user', longValues: 'reject' })).toMatchObject({ ok: false })
  })
})

describe('heap.toItem', () => {
  it('maps identify to a user update for the connection environment, the target kept out of the JSON', () => {
    const result = item(identify({ Plan: 'annual', 'Lifetime Value': 150 }))
    expect(JSON.parse(JSON.stringify(result))).toEqual({
      identity: 'cust_123',
      properties: { Plan: 'annual', 'Lifetime Value': 150 },
    })
    expect(result[TARGET]).toEqual({ endpoint: 'user', appId: '111' })
    expect(heap.batchKey!(result)).toBe('user:111')
  })

  it('maps group to an account update and takes the environment a send names when the connection allows it', () => {
    const result = item(group({ Tier: 'gold' }, { envId: '222' }))
    expect(JSON.parse(JSON.stringify(result))).toEqual({ account_id: 'acme', properties: { Tier: 'gold' } })
    expect(heap.batchKey!(result)).toBe('account:222')
  })

  it('refuses an environment the connection does not allow, naming it and the allowed ones', () => {
    const error = rejection(identify({ a: 1 }, { envId: '999' }))
    expect(error.message).toBe('Heap environment 999 is not allowed on connection "default" (allowed: 111, 222)')
    expect(error.code).toBe('LS_DEST_UNSUPPORTED_VALUE')
  })

  it('refuses track messages, a property type that does not fit, a missing or over-long identity', () => {
    const track = { ...identify({}), type: 'track', event: 'x', properties: {} } as unknown as CanonicalMessage
    expect(rejection(track).code).toBe('LS_DEST_UNSUPPORTED_MESSAGE')
    expect(rejection(identify({}, { propertyType: 'account' })).message).toMatch(/does not fit a identify message/)
    const anonymous = { ...identify({}), userId: undefined, anonymousId: 'anon' } as CanonicalMessage
    expect(rejection(anonymous).code).toBe('LS_DEST_MISSING_IDENTITY')
    const long = rejection({ ...identify({}), userId: 'u'.repeat(256) })
    expect(long.message).toBe('the identity is 256 characters; Heap takes at most 255')
  })

  it('applies the send’s long-value choice', () => {
    expect(rejection(identify({ Notes: 'x'.repeat(2000) })).message).toMatch(/^property "Notes" is 2000 characters/)
    expect(item(identify({ Notes: 'x'.repeat(2000) }, { longValues: 'truncate' })).properties.Notes).toHaveLength(1023)
  })
})

describe('heap.buildRequest', () => {
  it('posts users to add_user_properties with app_id in the body, splicing the encoded items', () => {
    const request = heap.buildRequest([user({ a: 1 }, 'u1'), user({ b: 'x' }, 'u2')], connection, new Date())
    expect(request.url).toBe('https://heapanalytics.com/api/add_user_properties')
    expect(request.method).toBe('POST')
    expect(request.headers).toEqual({ 'content-type': 'application/json' })
    expect(JSON.parse(request.body)).toEqual({
      app_id: '111',
      users: [
        { identity: 'u1', properties: { a: 1 } },
        { identity: 'u2', properties: { b: 'x' } },
      ],
    })
  })

  it('posts accounts to add_account_properties on the connection host (EU)', () => {
    const eu = { ...connection, endpoint: 'https://c.eu.heap-api.com' }
    const request = heap.buildRequest([encode(item(group({ t: 1 }, { envId: '222' })))], eu, new Date())
    expect(request.url).toBe('https://c.eu.heap-api.com/api/add_account_properties')
    expect(JSON.parse(request.body)).toEqual({
      app_id: '222',
      accounts: [{ account_id: 'acme', properties: { t: 1 } }],
    })
  })

  it('sends an identity named twice once, its properties merged in order (the last value wins)', () => {
    const items = [user({ a: 1, b: 1 }, 'u1'), user({ c: 3 }, 'u2'), user({ a: 2 }, 'u1'), user({ d: 4 }, 'u1')]
    expect(JSON.parse(heap.buildRequest(items, connection, new Date()).body)).toEqual({
      app_id: '111',
      users: [
        { identity: 'u1', properties: { a: 2, b: 1, d: 4 } },
        { identity: 'u2', properties: { c: 3 } },
      ],
    })
  })
})

describe('heap.classify', () => {
  const items = [user({ a: 1 }, 'u1'), user({ a: 2 }, 'u2')]
  const response = (status: number, body = '', headers: Record<string, string> = {}) => ({ status, headers, body })
  const request = { url: '', method: 'POST' as const, headers: {}, body: '' }

  it('delivers every item on 200', () => {
    expect(heap.classify(response(200, '{}'), items, request)).toEqual({
      kind: 'items',
      outcomes: [{ kind: 'delivered' }, { kind: 'delivered' }],
    })
  })

  it('asks to bisect on 400, and gives a single item Heap’s reason with the item’s own values blanked', () => {
    expect(heap.classify(response(400, '{"error":"users[1]: bad"}'), items, request)).toEqual({
      kind: 'split',
      reason: 'HTTP 400',
    })
    const one = [user({ Notes: 'secret-value' }, 'person@example.com')]
    const body = '{"error":"users[0] person@example.com: property \\"Notes\\" secret-value is invalid"}'
    expect(heap.classify(response(400, body), one, request)).toEqual({
      kind: 'split',
      reason: 'HTTP 400: {"error":"users[0] ‹value›: property \\"Notes\\" ‹value› is invalid"}',
    })
  })

  it('retries 429 (rate limited, Retry-After honoured when given), 408 and 5xx; other 4xx are permanent', () => {
    const limited = heap.classify(response(429, '', { 'retry-after': '2' }), items, request)
    expect(limited).toMatchObject({
      kind: 'items',
      outcomes: [
        { kind: 'retryable', status: 429, code: 'LS_DEST_RATE_LIMITED', retryAfterMs: 2000 },
        { kind: 'retryable', status: 429 },
      ],
    })
    expect(heap.classify(response(503), items, request)).toMatchObject({
      outcomes: [{ kind: 'retryable', code: 'LS_DEST_RETRYABLE' }, { kind: 'retryable' }],
    })
    expect(heap.classify(response(404), items, request)).toMatchObject({
      outcomes: [{ kind: 'permanent', code: 'LS_DEST_REJECTED' }, { kind: 'permanent' }],
    })
  })
})

describe('heap connections and config', () => {
  const load = (env: Record<string, string>) => loadConfig(heap.config, env)

  it('builds the default connection from HEAP_APP_ID and named ones from HEAP_CONNECTIONS, paced in items', () => {
    const config = load({
      HEAP_APP_ID: '111',
      HEAP_ALLOWED_APP_IDS: '222,333',
      HEAP_CONNECTIONS: JSON.stringify({ eu: { appId: '444', region: 'eu', itemsPerMinute: 6000 } }),
    })
    const connections = heap.connections(config)
    const main = connections.get('default')!
    expect(main).toMatchObject({ endpoint: 'https://heapanalytics.com', appId: '111', rateLimitScope: 'app-111' })
    expect([...main.appIds]).toEqual(['111', '222', '333'])
    // 15,000 items and 1,000 per identity per minute, paced at 98 %.
    expect(main.itemRatePerSecond).toBeCloseTo(245)
    expect(main.rateLimitRps).toBeCloseTo((1000 / 60) * 0.98)
    // A request's items land at once: at 15,000/min a request carries 100, so a minute never holds more than
    // 14,700 paced items plus one request and one request of catch-up, with another request's worth of margin.
    expect(main.maxBatchItems).toBe(100)
    expect(main.itemBurst).toBe(101)
    expect(requestItemsFor(15_000)).toBe(100)
    expect(requestItemsFor(150_000)).toBe(1000)
    expect(requestItemsFor(10)).toBe(1)
    const eu = connections.get('eu')!
    expect(eu).toMatchObject({ endpoint: 'https://c.eu.heap-api.com', appId: '444' })
    expect(eu.itemRatePerSecond).toBeCloseTo(98)
    expect(heap.allowedHosts(config)).toEqual(['heapanalytics.com', 'c.eu.heap-api.com', 'heapanalytics.com'])
  })

  it('refuses an environment id that is not digits', () => {
    expect(() => load({ HEAP_APP_ID: 'abc' })).toThrow(/HEAP_APP_ID/)
    expect(() => load({ HEAP_CONNECTIONS: JSON.stringify({ x: { appId: '12a' } }) })).toThrow(
      /HEAP_CONNECTIONS.*\/x\/appId must match pattern/,
    )
  })
})

describe('environments announced in the destination registry', () => {
  it('heapRowConnection rebuilds from publicSettings what toHeapItem reads, with the same refusals', () => {
    const settings = heap.publicSettings!(connection)
    const rebuilt = heapRowConnection('default', settings)
    expect(rebuilt).toEqual({ name: 'default', appId: '111', appIds: new Set(['111', '222']) })
    const allowed = identify({ plan: 'gold' }, { envId: '222' })
    expect(toHeapItem(allowed, rebuilt!)).toEqual(heap.toItem(allowed, connection))
    const other = identify({ plan: 'gold' }, { envId: '333' })
    expect((toHeapItem(other, rebuilt!) as PermanentError).message).toBe(
      (heap.toItem(other, connection) as PermanentError).message,
    )
  })

  it('is undefined when the settings are missing or not environment ids', () => {
    expect(heapRowConnection('default', undefined)).toBeUndefined()
    expect(heapRowConnection('default', { environment: '111' })).toBeUndefined()
    expect(heapRowConnection('default', { environment: 'abc', environments: ['111'] })).toBeUndefined()
    expect(heapRowConnection('default', { environment: '111', environments: ['1x'] })).toBeUndefined()
  })
})
