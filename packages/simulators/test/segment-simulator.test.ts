import { afterEach, describe, expect, it } from 'vitest'
import { type AcceptedItem, type RejectedItem, type Simulator, startSegmentSimulator } from '../src/index.ts'
import { admin, basic, call, type Page } from './http.ts'

const writeKey = 'test-write-key'
const auth = basic(writeKey)
let sim: Simulator

async function start(options: Parameters<typeof startSegmentSimulator>[0] = {}): Promise<Simulator> {
  sim = await startSegmentSimulator({ writeKeys: [writeKey], ...options })
  return sim
}

afterEach(async () => {
  await sim?.close()
})

function identify(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'identify', messageId: `msg-${i}`, userId: `user-${i}`, traits: { plan: 'annual' }, ...extra }
}

describe('segment simulator', () => {
  it('accepts a batch with Basic writeKey auth and records each event with receive and accept timestamps', async () => {
    await start()
    const before = Date.now()
    const res = await call('POST', `${sim.url}/v1/batch`, {
      headers: auth,
      body: { batch: [identify(1), identify(2)] },
    })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ success: true })
    const accepted = await admin<Page<AcceptedItem>>(sim.url, '/accepted')
    expect(accepted.items.map((item) => item.id)).toEqual(['msg-1', 'msg-2'])
    for (const item of accepted.items) {
      expect(item.kind).toBe('identify')
      expect(item.receivedAt).toBeGreaterThanOrEqual(before - 100)
      expect(item.acceptedAt).toBeGreaterThanOrEqual(item.receivedAt)
      expect(item.requestId).toBe(1)
    }
    expect(sim.state.acceptedIds.has('msg-1')).toBe(true)
  })

  it('accepts the writeKey in the body and on the single-event endpoints', async () => {
    await start()
    const batch = await call('POST', `${sim.url}/v1/batch`, { body: { writeKey, batch: [identify(1)] } })
    expect(batch.status).toBe(200)
    const track = await call('POST', `${sim.url}/v1/track`, {
      body: { writeKey, userId: 'u', event: 'Renewed', messageId: 'single-1' },
    })
    expect(track.status).toBe(200)
    expect(sim.state.accepted.toArray().map((item) => [item.kind, item.id])).toEqual([
      ['identify', 'msg-1'],
      ['track', 'single-1'],
    ])
  })

  it('answers 401 to a missing, unknown or colon-less Basic write key and records nothing', async () => {
    await start()
    const body = { batch: [identify(1)] }
    expect((await call('POST', `${sim.url}/v1/batch`, { body })).status).toBe(401)
    expect((await call('POST', `${sim.url}/v1/batch`, { headers: basic('wrong'), body })).status).toBe(401)
    const noColon = { authorization: `Basic ${Buffer.from(writeKey).toString('base64')}` }
    expect((await call('POST', `${sim.url}/v1/batch`, { headers: noColon, body })).status).toBe(401)
    expect((await call('POST', `${sim.url}/v1/batch`, { body: { ...body, writeKey: 'nope' } })).status).toBe(401)
    expect(sim.state.counters.accepted).toBe(0)
  })

  it('answers 400 to a body over 500 KB', async () => {
    await start()
    // 120 events of 4.5 KB each: every event is under 32 KB, the request is over 500 KB.
    const batch = Array.from({ length: 120 }, (_, i) => identify(i, { traits: { blob: 'x'.repeat(4500) } }))
    const res = await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch } })
    expect(res.status).toBe(400)
    expect(sim.state.counters.accepted).toBe(0)
    const justUnder = Array.from({ length: 100 }, (_, i) => identify(i, { traits: { blob: 'x'.repeat(4500) } }))
    expect((await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: justUnder } })).status).toBe(200)
  })

  it('answers 400 to a batch holding one event over 32 KB', async () => {
    await start()
    const batch = [identify(1), identify(2, { traits: { blob: 'x'.repeat(33 * 1024) } })]
    const res = await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch } })
    expect(res.status).toBe(400)
    expect(sim.state.counters.accepted).toBe(0)
  })

  it('answers 400 to bad JSON, to a non-JSON content type and to a batch that is not an array', async () => {
    await start()
    expect((await call('POST', `${sim.url}/v1/batch`, { headers: auth, raw: '{"batch":[' })).status).toBe(400)
    const textPlain = { ...auth, 'content-type': 'text/plain' }
    expect((await call('POST', `${sim.url}/v1/batch`, { headers: textPlain, raw: '{"batch":[]}' })).status).toBe(400)
    expect((await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: {} } })).status).toBe(400)
  })

  it('returns 200 for a batch over 2,500 events but records every event as rejected', async () => {
    await start()
    const batch = Array.from({ length: 2501 }, (_, i) => ({
      type: 'track',
      messageId: `m${i}`,
      userId: 'u',
      event: 'e',
    }))
    const res = await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch } })
    expect(res.status).toBe(200)
    expect(sim.state.counters.accepted).toBe(0)
    expect(sim.state.counters.rejected).toBe(2501)
    expect(sim.state.rejected.toArray(0, 1)[0]).toMatchObject({ reason: 'batch_too_large', id: 'm0', index: 0 })
    const exactly = batch.slice(0, 2500)
    expect((await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: exactly } })).status).toBe(200)
    expect(sim.state.counters.accepted).toBe(2500)
  })

  it('drops events without a user id, tracks without an event name and over-long messageIds, still with 200', async () => {
    await start()
    const batch = [
      { type: 'identify', messageId: 'a', traits: {} },
      { type: 'track', messageId: 'b', userId: 'u' },
      { type: 'track', messageId: 'c', anonymousId: 'anon', event: 'Viewed' },
      { type: 'identify', messageId: 'x'.repeat(100), userId: 'u' },
      { type: 'bogus', messageId: 'd', userId: 'u' },
    ]
    const res = await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch } })
    expect(res.status).toBe(200)
    const rejected = await admin<Page<RejectedItem>>(sim.url, '/rejected')
    expect(rejected.items.map((item) => [item.index, item.reason])).toEqual([
      [0, 'no_user_anon_id'],
      [1, 'no_event'],
      [3, 'invalid_message_id'],
      [4, 'invalid_type'],
    ])
    expect(sim.state.accepted.toArray().map((item) => item.id)).toEqual(['c'])
  })

  it('dedupes on messageId: a redelivered event is recorded as a duplicate and accepted once', async () => {
    await start()
    await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: [identify(1), identify(2)] } })
    const res = await call('POST', `${sim.url}/v1/batch`, {
      headers: auth,
      body: { batch: [identify(2), identify(3)] },
    })
    expect(res.status).toBe(200)
    expect(sim.state.counters.accepted).toBe(3)
    expect(sim.state.counters.duplicates).toBe(1)
    expect([...sim.state.acceptedIds.keys()]).toEqual(['msg-1', 'msg-2', 'msg-3'])
    const duplicates = sim.state.duplicates.toArray()
    expect(duplicates).toHaveLength(1)
    expect(duplicates[0]).toMatchObject({ id: 'msg-2', requestId: 2 })
  })

  it('accepts a messageId again once the dedupe window has passed', async () => {
    await start({ dedupeWindowMs: 0 })
    await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: [identify(1)] } })
    await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: [identify(1)] } })
    expect(sim.state.counters.accepted).toBe(2)
    expect(sim.state.counters.duplicates).toBe(0)
  })

  it('assigns a random messageId when none is sent, so a resend is not deduplicated', async () => {
    await start()
    const event = { type: 'track', userId: 'u', event: 'e' }
    await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: [event] } })
    await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: [event] } })
    expect(sim.state.counters.accepted).toBe(2)
    expect(sim.state.acceptedIds.size).toBe(2)
  })

  it('merges the batch-level context and integrations into each event', async () => {
    await start()
    const body = {
      batch: [identify(1, { context: { ip: '1.2.3.4' } })],
      context: { library: { name: 'lookstream', version: '1' } },
      integrations: { All: false, Segment: true },
    }
    await call('POST', `${sim.url}/v1/batch`, { headers: auth, body })
    expect(sim.state.accepted.toArray()[0]?.item).toMatchObject({
      context: { ip: '1.2.3.4', library: { name: 'lookstream', version: '1' } },
      integrations: { All: false, Segment: true },
    })
  })

  it('answers 429 with Retry-After and X-RateLimit-Reset beyond the configured request rate', async () => {
    await start({ rateLimit: { limit: 3, windowMs: 60_000 } })
    for (let i = 0; i < 3; i++) {
      const ok = await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: [identify(i)] } })
      expect(ok.status).toBe(200)
    }
    const limited = await call('POST', `${sim.url}/v1/batch`, { headers: auth, body: { batch: [identify(9)] } })
    expect(limited.status).toBe(429)
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(50)
    expect(Number(limited.headers['x-ratelimit-reset'])).toBeGreaterThanOrEqual(50)
    expect(sim.state.acceptedIds.has('msg-9')).toBe(false)
    expect(sim.state.counters.rateLimited).toBe(1)
  })

  it('accepts gzip-encoded bodies', async () => {
    await start()
    const { gzipSync } = await import('node:zlib')
    const raw = gzipSync(JSON.stringify({ batch: [identify(1)] }))
    const res = await call('POST', `${sim.url}/v1/batch`, { headers: { ...auth, 'content-encoding': 'gzip' }, raw })
    expect(res.status).toBe(200)
    expect(sim.state.acceptedIds.has('msg-1')).toBe(true)
  })
})
