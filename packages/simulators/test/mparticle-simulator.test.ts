import { afterEach, describe, expect, it } from 'vitest'
import { type RejectedItem, type Simulator, startMparticleSimulator } from '../src/index.ts'
import { admin, basic, call, type Page } from './http.ts'

const credentials = [
  { key: 'key-a', secret: 'secret-a' },
  { key: 'key-b', secret: 'secret-b' },
]
const auth = basic('key-a', 'secret-a')
let sim: Simulator

async function start(options: Parameters<typeof startMparticleSimulator>[0] = {}): Promise<Simulator> {
  sim = await startMparticleSimulator({ credentials, ...options })
  return sim
}

afterEach(async () => {
  await sim?.close()
})

function batch(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    environment: 'production',
    schema_version: 2,
    source_request_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    user_identities: { customer_id: `cust_${i}` },
    user_attributes: { plan: 'annual', tags: ['a', 'b'] },
    events: [
      {
        event_type: 'custom_event',
        data: {
          event_name: 'Renewed',
          custom_event_type: 'transaction',
          source_message_id: '6f1d2c3b-4a5e-5f60-8172-93a4b5c6d7e8',
          timestamp_unixtime_ms: 1748757600000,
          custom_attributes: { plan: 'annual', revenue: 99 },
        },
      },
    ],
    ...extra,
  }
}

function bulk(body: unknown, headers: Record<string, string> = auth, path = '/v2/bulkevents') {
  return call('POST', `${sim.url}${path}`, { headers, body })
}

describe('mparticle simulator', () => {
  it('answers 401 without Basic credentials and 403 with wrong ones', async () => {
    await start()
    expect((await bulk([batch(1)], {})).status).toBe(401)
    expect((await bulk([batch(1)], basic('key-a', 'secret-b'))).status).toBe(403)
    expect((await bulk([batch(1)], basic('nobody', 'x'))).status).toBe(403)
    expect(sim.state.counters.accepted).toBe(0)
  })

  it('accepts a bulk request with 202 and an empty body, reporting the rate-limit percentage used', async () => {
    await start({ rateLimit: { limit: 10, windowMs: 60_000 } })
    const res = await bulk([batch(1), batch(2)])
    expect(res.status).toBe(202)
    expect(res.text).toBe('')
    expect(res.headers['x-mp-rate-limit-percentage-used']).toBe('20')
    expect([...sim.state.acceptedIds.keys()]).toHaveLength(2)
  })

  it("reports the share of the key's limit used in its current window, by every client of the key, from 0 again in the next window", async () => {
    await start({ rateLimit: { limit: 10, windowMs: 400 } })
    const used = async (count: number, headers = auth) => {
      const res = await bulk(
        Array.from({ length: count }, (_, i) => batch(i)),
        headers,
      )
      return [res.status, res.headers['x-mp-rate-limit-percentage-used']]
    }
    expect(await used(3)).toEqual([202, '30'])
    // Another key has its own window.
    expect(await used(2, basic('key-b', 'secret-b'))).toEqual([202, '20'])
    // Another client of key-a (same credentials) counts in the same window.
    expect(await used(3)).toEqual([202, '60'])
    expect(await used(4)).toEqual([202, '100'])
    // Over the limit: 429, and no usage reading.
    expect(await used(1)).toEqual([429, undefined])
    // The passing of the window is what is tested here: the next request opens a new one.
    await new Promise((resolve) => setTimeout(resolve, 450))
    expect(await used(1)).toEqual([202, '10'])
  })

  it('answers 202 when some batches are invalid, recording each rejection with its reason and index', async () => {
    await start()
    const res = await bulk([
      batch(1),
      batch(2, { environment: 'staging' }),
      batch(3, { events: [{ event_type: 'custom_event', data: { event_name: 'x', custom_event_type: 'purchase' } }] }),
      batch(4, {
        events: [
          {
            event_type: 'custom_event',
            data: { event_name: 'x', custom_event_type: 'other', source_message_id: 'not-a-uuid' },
          },
        ],
      }),
      batch(5, { user_identities: { customerid: 'c' } }),
      batch(6),
    ])
    expect(res.status).toBe(202)
    const rejected = await admin<Page<RejectedItem>>(sim.url, '/rejected')
    expect(rejected.items.map((item) => item.index)).toEqual([1, 2, 3, 4])
    expect(rejected.items[0]?.reason).toContain('environment')
    expect(rejected.items[1]?.reason).toContain('custom_event_type')
    expect(rejected.items[2]?.reason).toContain('source_message_id')
    expect(rejected.items[3]?.reason).toContain('customerid')
    expect(sim.state.counters.accepted).toBe(2)
  })

  it('answers 400 to an invalid batch on /events, to more than 100 batches and to bad JSON', async () => {
    await start()
    const single = await call('POST', `${sim.url}/v2/events`, { headers: auth, body: batch(1, { environment: 'qa' }) })
    expect(single.status).toBe(400)
    expect(single.body).toMatchObject({ errors: [{ code: 'BAD_REQUEST' }] })
    const ok = await call('POST', `${sim.url}/v2/events`, { headers: auth, body: batch(1) })
    expect(ok.status).toBe(202)
    const many = Array.from({ length: 101 }, (_, i) => batch(100 + i, { events: [] }))
    expect((await bulk(many)).status).toBe(400)
    expect((await bulk(many.slice(0, 100))).status).toBe(202)
    expect((await call('POST', `${sim.url}/v2/bulkevents`, { headers: auth, raw: '[{' })).status).toBe(400)
    expect((await bulk(batch(1))).status).toBe(400)
  })

  it('answers 413 to a body of 256 KB or more', async () => {
    await start()
    const big = Array.from({ length: 30 }, (_, i) =>
      batch(i, { user_attributes: { blob: 'x'.repeat(4000), b: 'y'.repeat(4000) } }),
    )
    expect(Buffer.byteLength(JSON.stringify(big))).toBeGreaterThan(240 * 1024)
    const over = [...big, ...big.slice(0, 3)]
    expect(Buffer.byteLength(JSON.stringify(over))).toBeGreaterThanOrEqual(256 * 1024)
    expect((await bulk(over)).status).toBe(413)
    expect((await bulk(big)).status).toBe(202)
  })

  it('dedupes source_request_id per API key', async () => {
    await start()
    await bulk([batch(1)])
    expect((await bulk([batch(1), batch(2)])).status).toBe(202)
    expect(sim.state.counters.accepted).toBe(2)
    expect(sim.state.counters.duplicates).toBe(1)
    await bulk([batch(1)], basic('key-b', 'secret-b'))
    expect(sim.state.counters.accepted).toBe(3)
  })

  it('dedupes source_request_id with a single API key, forgets it after a reset, and takes it again past the window', async () => {
    const one = [{ key: 'key-a', secret: 'secret-a' }]
    await start({ credentials: one })
    await bulk([batch(1)])
    expect((await bulk([batch(1), batch(2), batch(2)])).status).toBe(202)
    expect(sim.state.counters).toMatchObject({ accepted: 2, duplicates: 2 })
    expect([...sim.state.acceptedIds.keys()]).toEqual([batch(1).source_request_id, batch(2).source_request_id])

    await admin(sim.url, '/reset', 'POST')
    await bulk([batch(1)])
    expect(sim.state.counters).toMatchObject({ accepted: 1, duplicates: 0 })
    await sim.close()

    // A window of 0 ms has always ended: the same batch is accepted again, and its id moves to the end.
    await start({ credentials: one, dedupeWindowMs: 0 })
    await bulk([batch(1), batch(2), batch(1)])
    expect(sim.state.counters).toMatchObject({ accepted: 3, duplicates: 0 })
    expect([...sim.state.acceptedIds.keys()]).toEqual([batch(2).source_request_id, batch(1).source_request_id])
  })

  it('answers 429 with Retry-After and X-mp-rate-limit-exceeded beyond the configured batch rate', async () => {
    await start({ rateLimit: { limit: 3, windowMs: 20_000 }, rateLimitScope: 'workspace' })
    expect((await bulk([batch(1), batch(2)])).status).toBe(202)
    const limited = await bulk([batch(3), batch(4)])
    expect(limited.status).toBe(429)
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(10)
    expect(limited.headers['x-mp-rate-limit-exceeded']).toBe('workspace')
    expect((await bulk([batch(5)])).status).toBe(202)
  })

  it('requires events at least 72 hours old on /bulkevents/historical', async () => {
    await start()
    const recent = batch(1, {
      events: [
        {
          event_type: 'custom_event',
          data: { event_name: 'x', custom_event_type: 'other', timestamp_unixtime_ms: Date.now() },
        },
      ],
    })
    const old = batch(2, {
      events: [
        {
          event_type: 'custom_event',
          data: { event_name: 'x', custom_event_type: 'other', timestamp_unixtime_ms: Date.now() - 80 * 3600_000 },
        },
      ],
    })
    expect((await bulk([recent, old], auth, '/v2/bulkevents/historical')).status).toBe(202)
    expect(sim.state.rejected.toArray().map((item) => item.index)).toEqual([0])
    expect(sim.state.accepted.toArray().map((item) => item.id)).toEqual([old.source_request_id])
  })

  it('names where a batch is invalid: the batch, the event, the attribute', async () => {
    await start()
    const custom = (attributes: unknown) => ({
      event_type: 'custom_event',
      data: { event_name: 'x', custom_event_type: 'other', custom_attributes: attributes },
    })
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`a${i}`, i]))
    const res = await bulk([
      batch(1),
      batch(2, { events: [custom({ ok: 1 }), custom({ nested: { no: 1 } })] }),
      // Over 100 attributes is the error reported, even with an invalid attribute before the 101st.
      batch(3, { user_attributes: { bad: { no: 1 }, ...many } }),
      batch(4, { user_attributes: { bad: { no: 1 }, list: ['x'.repeat(513)] } }),
      batch(5, { user_identities: { customer_id: 5 } }),
    ])
    expect(res.status).toBe(202)
    const rejected = await admin<Page<RejectedItem>>(sim.url, '/rejected')
    expect(rejected.items.map((item) => item.reason)).toEqual([
      'batches[1].events[1].data.custom_attributes.nested must be a string, number or boolean',
      'batches[2].user_attributes has more than 100 attributes',
      'batches[3].user_attributes.bad must be a string, number or boolean',
      'batches[4].user_identities.customer_id must be a string',
    ])
    const single = await call('POST', `${sim.url}/v2/events`, {
      headers: auth,
      body: batch(6, { events: [custom({}), { event_type: '' }] }),
    })
    expect(single.body).toEqual({
      errors: [{ code: 'BAD_REQUEST', message: 'batch.events[1].event_type is required' }],
    })
  })
})
