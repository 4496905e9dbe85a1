import { afterEach, describe, expect, it } from 'vitest'
import {
  type AcceptedItem,
  type DuplicateItem,
  type RejectedItem,
  type RequestLogEntry,
  type Simulator,
  startSegmentSimulator,
} from '../src/index.ts'
import { admin, basic, call, type Page } from './http.ts'

const auth = basic('segment-write-key')
let sim: Simulator

afterEach(async () => {
  await sim?.close()
})

function batchOf(ids: string[]): unknown {
  return { batch: ids.map((id) => ({ type: 'identify', userId: 'u', messageId: id })) }
}

async function send(ids: string[]) {
  return call('POST', `${sim.url}/v1/batch`, {
    headers: { ...auth, 'user-agent': 'inspection-test' },
    body: batchOf(ids),
  })
}

describe('inspection API', () => {
  it('lists accepted, rejected and duplicate items and the request log over HTTP, with paging', async () => {
    sim = await startSegmentSimulator()
    await send(['a', 'b', 'c'])
    await call('POST', `${sim.url}/v1/batch`, {
      headers: auth,
      body: {
        batch: [
          { type: 'identify', userId: 'u', messageId: 'c' },
          { type: 'identify', messageId: 'no-user' },
        ],
      },
    })
    const accepted = await admin<Page<AcceptedItem>>(sim.url, '/accepted?offset=1&limit=2')
    expect(accepted.total).toBe(3)
    expect(accepted.items.map((item) => item.id)).toEqual(['b', 'c'])
    expect(accepted.items[0]?.item).toEqual({ type: 'identify', userId: 'u', messageId: 'b' })
    const duplicates = await admin<Page<DuplicateItem>>(sim.url, '/duplicates')
    expect(duplicates.items).toMatchObject([{ id: 'c', requestId: 2 }])
    expect(duplicates.items[0]?.firstAcceptedAt).toBe(accepted.items[1]?.acceptedAt)
    const rejected = await admin<Page<RejectedItem>>(sim.url, '/rejected')
    expect(rejected.items).toMatchObject([{ id: 'no-user', index: 1, reason: 'no_user_anon_id', requestId: 2 }])
    const requests = await admin<Page<RequestLogEntry>>(sim.url, '/requests')
    expect(requests.items).toHaveLength(2)
    expect(requests.items[0]).toMatchObject({
      method: 'POST',
      path: '/v1/batch',
      status: 200,
      items: 3,
      accepted: 3,
      headers: { 'user-agent': 'inspection-test', authorization: 'Basic', 'content-type': 'application/json' },
    })
    expect(requests.items[1]).toMatchObject({ items: 2, accepted: 0, duplicates: 1, rejected: 1 })
    expect(requests.items[0]?.bytes).toBe(Buffer.byteLength(JSON.stringify(batchOf(['a', 'b', 'c']))))
    expect(requests.items[0]?.respondedAt).toBeGreaterThanOrEqual(requests.items[0]?.receivedAt ?? Infinity)
    // The request log must never hold credentials.
    expect(JSON.stringify(requests)).not.toContain(auth.authorization?.split(' ')[1])
  })

  it('serves accepted ids with their acceptance times in order, and counters in /__admin/state', async () => {
    sim = await startSegmentSimulator()
    await send(['x', 'y'])
    await send(['z'])
    const ids = await admin<{ total: number; ids: [string, number][] }>(sim.url, '/ids')
    expect(ids.total).toBe(3)
    expect(ids.ids.map(([id]) => id)).toEqual(['x', 'y', 'z'])
    expect(ids.ids[2]?.[1]).toBeGreaterThanOrEqual(ids.ids[0]?.[1] ?? Infinity)
    const paged = await admin<{ ids: [string, number][] }>(sim.url, '/ids?offset=1&limit=1')
    expect(paged.ids.map(([id]) => id)).toEqual(['y'])
    const state = await admin<{ simulator: string; counters: Record<string, unknown> }>(sim.url, '/state')
    expect(state.simulator).toBe('segment')
    expect(state.counters).toMatchObject({ requests: 2, accepted: 3, acceptedIds: 3, requestsByStatus: { '200': 2 } })
  })

  it('resets items, ids, counters, dedupe memory and faults with POST /__admin/reset', async () => {
    sim = await startSegmentSimulator()
    await send(['a'])
    sim.faults.failNext(5, { type: 'status', status: 500 })
    await admin(sim.url, '/reset', 'POST')
    expect(sim.state.counters.requests).toBe(0)
    expect(sim.state.accepted.size).toBe(0)
    expect(sim.state.acceptedIds.size).toBe(0)
    const res = await send(['a'])
    expect(res.status).toBe(200)
    expect(sim.state.counters.accepted).toBe(1)
    expect(sim.state.counters.duplicates).toBe(0)
  })

  it('keeps only the configured number of item bodies while counting every item and id', async () => {
    sim = await startSegmentSimulator({ maxItems: 10, maxRequests: 3 })
    for (let r = 0; r < 5; r++) await send(Array.from({ length: 20 }, (_, i) => `r${r}-${i}`))
    expect(sim.state.counters.accepted).toBe(100)
    expect(sim.state.acceptedIds.size).toBe(100)
    const accepted = await admin<Page<AcceptedItem>>(sim.url, '/accepted')
    expect(accepted.total).toBe(10)
    expect(accepted.evicted).toBe(90)
    expect(accepted.items.map((item) => item.id)).toEqual(Array.from({ length: 10 }, (_, i) => `r4-${10 + i}`))
    const requests = await admin<Page<RequestLogEntry>>(sim.url, '/requests')
    expect(requests.items.map((entry) => entry.id)).toEqual([3, 4, 5])
  })

  it('changes rate limits at run time through /__admin/rate-limits and refuses unknown ones', async () => {
    sim = await startSegmentSimulator()
    expect(await admin(sim.url, '/rate-limits')).toEqual({ requests: { limit: 1000, windowMs: 1000 } })
    await admin(sim.url, '/rate-limits', 'PUT', { requests: { limit: 1, windowMs: 60_000 } })
    expect((await send(['a'])).status).toBe(200)
    expect((await send(['b'])).status).toBe(429)
    await admin(sim.url, '/rate-limits', 'PUT', { requests: null })
    expect((await send(['c'])).status).toBe(200)
    expect((await call('PUT', `${sim.url}/__admin/rate-limits`, { body: { bogus: null } })).status).toBe(400)
    expect((await call('GET', `${sim.url}/__admin/nothing-here`)).status).toBe(404)
  })

  it('exposes counters in Prometheus text format on /metrics', async () => {
    sim = await startSegmentSimulator()
    await send(['a', 'b'])
    await send(['b'])
    const res = await call('GET', `${sim.url}/metrics`)
    expect(res.status).toBe(200)
    expect(res.text).toContain('simulator_requests_total{simulator="segment",status="200"} 2')
    expect(res.text).toContain('simulator_items_total{simulator="segment",outcome="accepted"} 2')
    expect(res.text).toContain('simulator_items_total{simulator="segment",outcome="duplicate"} 1')
  })
})
