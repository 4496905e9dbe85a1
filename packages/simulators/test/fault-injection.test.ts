import { errors, request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { type Simulator, startBrazeSimulator, startMparticleSimulator, startSegmentSimulator } from '../src/index.ts'
import { admin, basic, bearer, call } from './http.ts'

const auth = basic('segment-write-key')
let sims: Simulator[] = []

async function start(options: Parameters<typeof startSegmentSimulator>[0] = {}): Promise<Simulator> {
  const sim = await startSegmentSimulator({ rateLimit: null, ...options })
  sims.push(sim)
  return sim
}

afterEach(async () => {
  await Promise.all(sims.map((sim) => sim.close()))
  sims = []
})

let counter = 0
function send(sim: Simulator, messageId = `m${++counter}`) {
  return call('POST', `${sim.url}/v1/batch`, {
    headers: auth,
    body: { batch: [{ type: 'identify', userId: 'u', messageId }] },
  })
}

async function statuses(sim: Simulator, n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push((await send(sim)).status)
  return out
}

describe('fault injection', () => {
  it('fails the next N requests with the given status and headers, then answers normally', async () => {
    const sim = await start()
    sim.faults.failNext(2, { type: 'status', status: 503, headers: { 'retry-after': '1' } })
    const first = await send(sim, 'a')
    expect(first.status).toBe(503)
    expect(first.headers['retry-after']).toBe('1')
    expect((await send(sim, 'a')).status).toBe(503)
    expect((await send(sim, 'a')).status).toBe(200)
    expect(sim.state.counters.accepted).toBe(1)
    expect(sim.state.counters.faultsInjected).toBe(2)
    expect(sim.state.requests.toArray().map((entry) => entry.fault)).toEqual(['script:503', 'script:503', undefined])
  })

  it('queues scripted faults in order through POST /__admin/faults/next', async () => {
    const sim = await start()
    await admin(sim.url, '/faults/next', 'POST', {
      count: 1,
      status: 429,
      headers: { 'retry-after': '2', 'x-ratelimit-reset': '2' },
    })
    await admin(sim.url, '/faults/next', 'POST', { count: 2, status: 500 })
    const limited = await send(sim)
    expect(limited.status).toBe(429)
    expect(limited.headers['x-ratelimit-reset']).toBe('2')
    expect(await statuses(sim, 3)).toEqual([500, 500, 200])
  })

  it('draws rate-based faults from a seed, so the same seed gives the same sequence', async () => {
    const rates = [
      { type: 'status' as const, status: 500, rate: 0.2 },
      { type: 'status' as const, status: 429, rate: 0.1 },
    ]
    const a = await start({ faults: { seed: 7, rates } })
    const b = await start()
    await admin(b.url, '/faults', 'PUT', { seed: 7, rates })
    const seqA = await statuses(a, 200)
    const seqB = await statuses(b, 200)
    expect(seqA).toEqual(seqB)
    const share = (status: number): number => seqA.filter((s) => s === status).length / seqA.length
    expect(share(500)).toBeGreaterThan(0.1)
    expect(share(500)).toBeLessThan(0.3)
    expect(share(429)).toBeGreaterThan(0.03)
    expect(share(429)).toBeLessThan(0.18)
    expect(a.state.counters.accepted).toBe(seqA.filter((s) => s === 200).length)
  })

  it('adds the configured latency to every request', async () => {
    const sim = await start()
    await admin(sim.url, '/faults', 'PATCH', { latencyMs: 150 })
    const started = performance.now()
    expect((await send(sim)).status).toBe(200)
    expect(performance.now() - started).toBeGreaterThanOrEqual(145)
  })

  it('hangs a request until the client gives up, then answers the next one', async () => {
    const sim = await start()
    sim.faults.failNext(1, { type: 'hang' })
    const body = JSON.stringify({ batch: [{ type: 'identify', userId: 'u', messageId: 'hung' }] })
    const hung = request(`${sim.url}/v1/batch`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body,
      headersTimeout: 300,
    })
    await expect(hung).rejects.toBeInstanceOf(errors.HeadersTimeoutError)
    expect(sim.state.counters.accepted).toBe(0)
    expect(sim.state.requests.toArray()[0]).toMatchObject({ status: 0, fault: 'script:hang' })
    expect((await send(sim)).status).toBe(200)
  })

  it('resets the connection without a response', async () => {
    const sim = await start()
    sim.faults.failNext(1, { type: 'reset' })
    await expect(send(sim)).rejects.toThrow()
    expect((await send(sim)).status).toBe(200)
  })

  it('fails every request during an outage counted in requests, then recovers', async () => {
    const sim = await start()
    await admin(sim.url, '/faults/outage', 'POST', { status: 503, requests: 3 })
    expect(await statuses(sim, 4)).toEqual([503, 503, 503, 200])
  })

  it('fails every request during an outage measured in time, then recovers after it', async () => {
    const sim = await start()
    const started = Date.now()
    sim.faults.startOutage({ type: 'status', status: 500, durationMs: 300 })
    expect((await send(sim)).status).toBe(500)
    const deadline = started + 10_000
    let status = 500
    while (status === 500 && Date.now() < deadline) {
      status = (await send(sim)).status
      if (status === 500) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(status).toBe(200)
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
  })

  it('ends an outage early through DELETE /__admin/faults/outage', async () => {
    const sim = await start()
    await admin(sim.url, '/faults/outage', 'POST', { status: 502 })
    expect((await send(sim)).status).toBe(502)
    await admin(sim.url, '/faults/outage', 'DELETE')
    expect((await send(sim)).status).toBe(200)
  })

  it('applies an after-accept fault once the items were recorded, so a retry becomes a duplicate', async () => {
    const sim = await start()
    await admin(sim.url, '/faults/next', 'POST', { status: 500, afterAccept: true })
    expect((await send(sim, 'lost-ack')).status).toBe(500)
    expect(sim.state.acceptedIds.has('lost-ack')).toBe(true)
    expect((await send(sim, 'lost-ack')).status).toBe(200)
    expect(sim.state.counters.accepted).toBe(1)
    expect(sim.state.counters.duplicates).toBe(1)
  })

  it('rejects malformed fault configuration with 400 and clears faults with DELETE', async () => {
    const sim = await start()
    expect(
      (await call('PUT', `${sim.url}/__admin/faults`, { body: { rates: [{ status: 500, rate: 2 }] } })).status,
    ).toBe(400)
    expect((await call('POST', `${sim.url}/__admin/faults/next`, { body: { status: 42 } })).status).toBe(400)
    expect((await call('POST', `${sim.url}/__admin/faults/next`, { body: { type: 'explode' } })).status).toBe(400)
    await admin(sim.url, '/faults', 'PUT', { rates: [{ status: 500, rate: 1 }] })
    expect((await send(sim)).status).toBe(500)
    await admin(sim.url, '/faults', 'DELETE')
    expect((await send(sim)).status).toBe(200)
  })

  it("gives an injected 429 each API's real rate-limit headers unless the fault sets its own", async () => {
    const segment = await start()
    segment.faults.failNext(1, { type: 'status', status: 429 })
    const segment429 = await send(segment)
    expect(segment429.headers['retry-after']).toBe('1')
    expect(segment429.headers['x-ratelimit-reset']).toBe('1')
    segment.faults.failNext(1, { type: 'status', status: 429, headers: { 'retry-after': '7' } })
    const own = await send(segment)
    expect(own.headers['retry-after']).toBe('7')
    expect(own.headers['x-ratelimit-reset']).toBeUndefined()

    const braze = await startBrazeSimulator()
    sims.push(braze)
    braze.faults.failNext(1, { type: 'status', status: 429 })
    const braze429 = await call('POST', `${braze.url}/users/track`, {
      headers: bearer('braze-api-key'),
      body: { attributes: [{ external_id: 'u', a: 1 }] },
    })
    expect(braze429.status).toBe(429)
    expect(braze429.headers['x-ratelimit-retry-after']).toBe('1')

    const mparticle = await startMparticleSimulator()
    sims.push(mparticle)
    mparticle.faults.failNext(1, { type: 'status', status: 429 })
    const mparticle429 = await call('POST', `${mparticle.url}/v2/bulkevents`, {
      headers: basic('mparticle-key', 'mparticle-secret'),
      body: [],
    })
    expect(mparticle429.status).toBe(429)
    expect(mparticle429.headers['retry-after']).toBe('1')
    expect(mparticle429.headers['x-mp-rate-limit-exceeded']).toBe('app')
  })

  it('fails only requests whose body contains a poisoned id, so a split batch isolates it', async () => {
    const sim = await start()
    await admin(sim.url, '/faults/rules', 'POST', { bodyContains: '"poison-1"', status: 400, body: { message: 'bad' } })
    const batch = (ids: string[]) => ({ batch: ids.map((messageId) => ({ type: 'identify', userId: 'u', messageId })) })
    const post = (ids: string[]) => call('POST', `${sim.url}/v1/batch`, { headers: auth, body: batch(ids) })
    expect((await post(['ok-1', 'poison-1', 'ok-2'])).status).toBe(400)
    expect((await post(['ok-1'])).status).toBe(200)
    expect((await post(['poison-1'])).status).toBe(400)
    expect((await post(['ok-2'])).status).toBe(200)
    expect([...sim.state.acceptedIds.keys()]).toEqual(['ok-1', 'ok-2'])
    expect(sim.state.requests.toArray().map((entry) => entry.fault)).toEqual([
      'rule:400',
      undefined,
      'rule:400',
      undefined,
    ])
  })

  it('limits a rule to a path and a number of matching requests', async () => {
    const sim = await start()
    sim.faults.addRule({ type: 'status', status: 503, path: '/v1/track', count: 2 })
    const track = () =>
      call('POST', `${sim.url}/v1/track`, {
        headers: auth,
        body: { userId: 'u', event: 'e', messageId: `t${++counter}` },
      })
    expect((await send(sim)).status).toBe(200)
    expect((await track()).status).toBe(503)
    expect((await track()).status).toBe(503)
    expect((await track()).status).toBe(200)
  })
})
