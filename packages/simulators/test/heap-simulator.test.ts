import { afterEach, describe, expect, it } from 'vitest'
import { type HeapSimulator, startHeapSimulator } from '../src/index.ts'
import { admin, call } from './http.ts'

const appId = '4242'
let sim: HeapSimulator

async function start(options: Parameters<typeof startHeapSimulator>[0] = {}): Promise<HeapSimulator> {
  sim = await startHeapSimulator({ appIds: [appId], ...options })
  return sim
}

afterEach(async () => {
  await sim?.close()
})

function post(path: string, body: unknown) {
  return call('POST', `${sim.url}${path}`, { body })
}

function event(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    identity: `user-${i}`,
    event: 'Renewed',
    idempotency_key: `key-${i}`,
    properties: { plan: 'annual' },
    ...extra,
  }
}

describe('heap simulator', () => {
  it('accepts single and bulk track calls with 200 {}', async () => {
    await start()
    const single = await post('/api/track', { app_id: appId, ...event(0) })
    expect(single.status).toBe(200)
    expect(single.body).toEqual({})
    const bulk = await post('/api/track', { app_id: appId, events: [event(1), event(2)] })
    expect(bulk.status).toBe(200)
    expect(sim.state.accepted.toArray().map((item) => item.id)).toEqual([
      `${appId}:key-0`,
      `${appId}:key-1`,
      `${appId}:key-2`,
    ])
  })

  it('answers 400 to a missing or unknown app_id', async () => {
    await start()
    expect((await post('/api/track', event(0))).status).toBe(400)
    expect((await post('/api/track', { app_id: '999', ...event(0) })).status).toBe(400)
    expect(sim.state.counters.accepted).toBe(0)
  })

  it('dedupes on idempotency_key: a repeat is recorded as a duplicate and does not change data', async () => {
    await start()
    await post('/api/track', { app_id: appId, events: [event(1), event(2)] })
    const again = await post('/api/track', { app_id: appId, events: [event(2), event(3)] })
    expect(again.status).toBe(200)
    expect(sim.state.counters.accepted).toBe(3)
    expect(sim.state.counters.duplicates).toBe(1)
    expect(sim.state.duplicates.toArray()[0]).toMatchObject({ id: `${appId}:key-2`, requestId: 2 })
  })

  it('answers 400 to more than 1,000 items, and accepts exactly 1,000', async () => {
    await start({ rateLimits: { identityEvents: null, appEvents: null } })
    const events = Array.from({ length: 1001 }, (_, i) => event(i))
    expect((await post('/api/track', { app_id: appId, events })).status).toBe(400)
    expect((await post('/api/track', { app_id: appId, events: events.slice(0, 1000) })).status).toBe(200)
    const users = Array.from({ length: 1001 }, (_, i) => ({ identity: `u${i}`, properties: { a: 1 } }))
    expect((await post('/api/add_user_properties', { app_id: appId, users })).status).toBe(400)
  })

  it('answers 400 to an identity over 255 characters, an event over 1,024, a value of 1,024 or a nested object', async () => {
    await start()
    const cases = [
      event(1, { identity: 'i'.repeat(256) }),
      event(1, { event: 'e'.repeat(1025) }),
      event(1, { properties: { long: 'v'.repeat(1024) } }),
      event(1, { properties: { nested: { a: 1 } } }),
      event(1, { identity: undefined }),
      event(1, { user_id: '12', identity: 'both' }),
    ]
    for (const body of cases) {
      const res = await post('/api/track', { app_id: appId, events: [event(0), body] })
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400)
    }
    expect(sim.state.counters.accepted).toBe(0)
    expect(sim.state.counters.rejected).toBe(cases.length)
    const atLimit = await post('/api/track', {
      app_id: appId,
      ...event(1, { identity: 'i'.repeat(255), properties: { v: 'v'.repeat(1023), tags: ['a', 'b'] } }),
    })
    expect(atLimit.status).toBe(200)
    expect(sim.state.accepted.toArray()[0]?.item).toMatchObject({ properties: { tags: 'a||b' } })
  })

  it('keeps the last value of user and account properties and rejects a property named id', async () => {
    await start()
    await post('/api/add_user_properties', {
      app_id: appId,
      identity: 'u1',
      properties: { plan: 'trial', email: 'a@b.com' },
    })
    await post('/api/add_user_properties', {
      app_id: appId,
      users: [{ identity: 'u1', properties: { plan: 'annual' } }],
    })
    const users = await admin<{ users: Record<string, unknown> }>(sim.url, '/users')
    expect(users.users).toEqual({ [`${appId}:u1`]: { plan: 'annual', email: 'a@b.com' } })
    const reserved = await post('/api/add_user_properties', { app_id: appId, identity: 'u1', properties: { ID: 'x' } })
    expect(reserved.status).toBe(400)
    const account = await post('/api/add_account_properties', {
      app_id: appId,
      accounts: [{ account_id: 'acme', properties: { tier: 'gold' } }],
    })
    expect(account.status).toBe(200)
    expect(sim.accounts.get(`${appId}:acme`)).toEqual({ tier: 'gold' })
    expect((await post('/api/add_account_properties', { app_id: appId, properties: { tier: 'x' } })).status).toBe(400)
  })

  it('answers 429 past the per-identity request limit, per identity', async () => {
    await start({ rateLimits: { identityRequests: { limit: 3, windowMs: 30_000 } } })
    for (let i = 0; i < 3; i++)
      expect((await post('/api/track', { app_id: appId, ...event(i, { identity: 'busy' }) })).status).toBe(200)
    expect((await post('/api/track', { app_id: appId, ...event(9, { identity: 'busy' }) })).status).toBe(429)
    expect((await post('/api/track', { app_id: appId, ...event(10, { identity: 'calm' }) })).status).toBe(200)
  })

  it('answers 429 to bulk track past the per-identity and per-app event limits, taking nothing from a refused request', async () => {
    await start({
      rateLimits: { identityEvents: { limit: 5, windowMs: 60_000 }, appEvents: { limit: 8, windowMs: 60_000 } },
    })
    const busy = Array.from({ length: 6 }, (_, i) => event(i, { identity: 'busy' }))
    expect((await post('/api/track', { app_id: appId, events: busy })).status).toBe(429)
    expect((await post('/api/track', { app_id: appId, events: busy.slice(0, 5) })).status).toBe(200)
    const spread = Array.from({ length: 4 }, (_, i) => event(100 + i))
    expect((await post('/api/track', { app_id: appId, events: spread })).status).toBe(429)
    expect((await post('/api/track', { app_id: appId, events: spread.slice(0, 3) })).status).toBe(200)
    expect(sim.state.counters.accepted).toBe(8)
  })
})

describe('heap simulator: bulk user and account properties under the rate limits', () => {
  const users = (from: number, n: number, identity?: string) =>
    Array.from({ length: n }, (_, i) => ({ identity: identity ?? `u${from + i}`, properties: { n: from + i } }))

  it('counts users and accounts against the per-app items budget, refusing a request whole with 429', async () => {
    await start({ rateLimits: { appEvents: { limit: 10, windowMs: 60_000 } } })
    expect((await post('/api/add_user_properties', { app_id: appId, users: users(0, 6) })).status).toBe(200)
    const accounts = [1, 2, 3, 4, 5].map((i) => ({ account_id: `a${i}`, properties: { i } }))
    expect((await post('/api/add_account_properties', { app_id: appId, accounts })).status).toBe(429)
    expect((await post('/api/add_account_properties', { app_id: appId, accounts: accounts.slice(0, 4) })).status).toBe(
      200,
    )
    expect(sim.state.counters.rateLimited).toBe(1)
    expect(sim.users.size).toBe(6)
    expect(sim.accounts.size).toBe(4)
    expect(sim.updateCounts.get(`user:${appId}:u3`)).toBe(1)
  })

  it('counts every update of one identity against its per-identity budget', async () => {
    await start({ rateLimits: { identityEvents: { limit: 3, windowMs: 60_000 } } })
    expect((await post('/api/add_user_properties', { app_id: appId, users: users(0, 4, 'busy') })).status).toBe(429)
    expect((await post('/api/add_user_properties', { app_id: appId, users: users(0, 3, 'busy') })).status).toBe(200)
    expect((await post('/api/add_user_properties', { app_id: appId, users: users(5, 1, 'busy') })).status).toBe(429)
    expect((await post('/api/add_user_properties', { app_id: appId, users: users(5, 3) })).status).toBe(200)
    expect(sim.updateCounts.get(`user:${appId}:busy`)).toBe(3)
    expect(sim.users.get(`${appId}:busy`)).toEqual({ n: 2 })
  })
})
