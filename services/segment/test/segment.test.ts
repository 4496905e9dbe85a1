import { loadConfig } from '@lookstream/config'
import { PermanentError, type EncodedItem } from '@lookstream/destination'
import { type CanonicalMessage } from '@lookstream/events'
import { describe, expect, it } from 'vitest'
import { segment, type SegmentConnection, type SegmentItem } from '../src/segment.ts'

const connection: SegmentConnection = {
  name: 'default',
  endpoint: 'https://api.segment.io',
  rateLimitRps: 100,
  authorization: `Basic ${Buffer.from('wk:').toString('base64')}`,
}

const identify: CanonicalMessage = {
  type: 'identify',
  messageId: 'f0e1d2c3-0000-5000-8000-000000000001',
  userId: 'cust_123',
  traits: { plan: 'annual', ltv: 150 },
  context: { lookstream: { sendId: 's-1', row: 4, action: 'segment' }, library: { name: 'lookstream', version: '1' } },
  timestamp: '2026-06-01T06:00:00Z',
  integrations: { All: false, Segment: { connection: 'default' } },
}

function encode(item: SegmentItem): EncodedItem<SegmentItem> {
  const json = JSON.stringify(item)
  return { item, json, bytes: Buffer.byteLength(json) }
}

function response(status: number, headers: Record<string, string> = {}, body = '') {
  return { status, headers, body }
}

describe('segment.toItem', () => {
  it('maps identify with traits, passes messageId through and drops lookstream routing and bookkeeping', () => {
    expect(segment.toItem(identify, connection)).toEqual({
      type: 'identify',
      messageId: identify.messageId,
      userId: 'cust_123',
      traits: { plan: 'annual', ltv: 150 },
      context: { library: { name: 'lookstream', version: '1' } },
      timestamp: '2026-06-01T06:00:00Z',
    })
  })

  it('maps track (event, properties, anonymousId) and group (groupId, traits)', () => {
    const track: CanonicalMessage = {
      type: 'track',
      messageId: 'm-2',
      anonymousId: 'anon-1',
      event: 'Subscription Renewed',
      properties: { revenue: 99 },
      timestamp: '2026-06-01T06:00:00Z',
      integrations: {},
    }
    expect(segment.toItem(track, connection)).toEqual({
      type: 'track',
      messageId: 'm-2',
      anonymousId: 'anon-1',
      event: 'Subscription Renewed',
      properties: { revenue: 99 },
      timestamp: '2026-06-01T06:00:00Z',
    })
    const group: CanonicalMessage = {
      type: 'group',
      messageId: 'm-3',
      userId: 'u',
      groupId: 'acme',
      traits: { seats: 10 },
      timestamp: '2026-06-01T06:00:00Z',
      integrations: {},
    }
    expect(segment.toItem(group, connection)).toEqual({
      type: 'group',
      messageId: 'm-3',
      userId: 'u',
      groupId: 'acme',
      traits: { seats: 10 },
      timestamp: '2026-06-01T06:00:00Z',
    })
  })

  it('refuses a message without any identity as permanent', () => {
    const anonymous = { ...identify, userId: undefined } as unknown as CanonicalMessage
    expect(segment.toItem(anonymous, connection)).toBeInstanceOf(PermanentError)
  })
})

describe('segment.buildRequest', () => {
  it('posts the batch to /v1/batch of the connection host with Basic auth of "writeKey:"', () => {
    const items = [encode(segment.toItem(identify, connection) as SegmentItem)]
    const eu = { ...connection, endpoint: 'https://events.eu1.segmentapis.com' }
    const request = segment.buildRequest(items, eu, new Date())
    expect(request.url).toBe('https://events.eu1.segmentapis.com/v1/batch')
    expect(request.method).toBe('POST')
    expect(request.headers).toEqual({ 'content-type': 'application/json', authorization: 'Basic d2s6' })
    expect(JSON.parse(request.body)).toEqual({ batch: [items[0]!.item] })
  })
})

describe('segment.classify', () => {
  const items = [
    encode({ type: 'identify', messageId: 'a', userId: 'u', timestamp: 't' }),
    encode({ type: 'identify', messageId: 'b', userId: 'u', timestamp: 't' }),
  ]
  const sent = segment.buildRequest(items, connection, new Date())

  it('treats 200 as every item delivered', () => {
    expect(segment.classify(response(200), items, sent)).toEqual({
      kind: 'items',
      outcomes: [{ kind: 'delivered' }, { kind: 'delivered' }],
    })
  })

  it('asks to bisect a batch rejected with 400 or 413', () => {
    expect(segment.classify(response(400, {}, 'bad'), items, sent)).toEqual({ kind: 'split', reason: 'HTTP 400: bad' })
    expect(segment.classify(response(413), items, sent).kind).toBe('split')
  })

  it('classifies 429 as retryable with the Retry-After, 5xx and 408 as retryable', () => {
    const limited = segment.classify(response(429, { 'retry-after': '2' }), items, sent)
    expect(limited).toMatchObject({
      kind: 'items',
      outcomes: [
        { kind: 'retryable', retryAfterMs: 2000, status: 429 },
        { kind: 'retryable', retryAfterMs: 2000, status: 429 },
      ],
    })
    expect(segment.classify(response(503), items, sent)).toMatchObject({
      outcomes: [{ kind: 'retryable', status: 503 }, { kind: 'retryable' }],
    })
    expect(segment.classify(response(408), items, sent)).toMatchObject({
      outcomes: [{ kind: 'retryable', status: 408 }, { kind: 'retryable' }],
    })
  })

  it('classifies 401/403 as auth (pause, not DLQ) and other 4xx as permanent', () => {
    expect(segment.classify(response(401), items, sent)).toMatchObject({
      outcomes: [{ kind: 'auth' }, { kind: 'auth' }],
    })
    expect(segment.classify(response(403), items, sent)).toMatchObject({
      outcomes: [{ kind: 'auth' }, { kind: 'auth' }],
    })
    expect(segment.classify(response(404), items, sent)).toMatchObject({
      outcomes: [{ kind: 'permanent' }, { kind: 'permanent' }],
    })
  })
})

describe('segment config', () => {
  it('resolves the default connection and more from SEGMENT_CONNECTIONS, each with its host', () => {
    const config = loadConfig(segment.config, {
      SEGMENT_WRITE_KEY: 'wk',
      SEGMENT_CONNECTIONS: JSON.stringify({ eu: { writeKey: 'euk', apiUrl: 'https://events.eu1.segmentapis.com/' } }),
      SEGMENT_RATE_LIMIT_RPS: '50',
    })
    const connections = segment.connections(config)
    expect([...connections.keys()]).toEqual(['default', 'eu'])
    expect(connections.get('default')).toMatchObject({ endpoint: 'https://api.segment.io', rateLimitRps: 50 })
    expect(connections.get('eu')).toMatchObject({
      endpoint: 'https://events.eu1.segmentapis.com',
      authorization: `Basic ${Buffer.from('euk:').toString('base64')}`,
    })
  })

  it('allows the Segment hosts plus the SEGMENT_API_URL host by default, exactly SEGMENT_ALLOWED_HOSTS when set', () => {
    const local = loadConfig(segment.config, { SEGMENT_WRITE_KEY: 'wk', SEGMENT_API_URL: 'http://127.0.0.1:4100' })
    expect(segment.allowedHosts(local)).toEqual([
      'api.segment.io',
      'events.eu1.segmentapis.com',
      'eu1.api.segmentapis.com',
      '127.0.0.1:4100',
    ])
    const pinned = loadConfig(segment.config, { SEGMENT_WRITE_KEY: 'wk', SEGMENT_ALLOWED_HOSTS: 'api.segment.io' })
    expect(segment.allowedHosts(pinned)).toEqual(['api.segment.io'])
  })
})
