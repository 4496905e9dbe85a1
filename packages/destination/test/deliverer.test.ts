import { startSegmentSimulator, type Simulator } from '@lookstream/simulators'
import { startRedis } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Dedupe } from '../src/dedupe.ts'
import { Deliverer, type FinalOutcome } from '../src/deliverer.ts'
import type { Classification, Connection, EncodedItem, HttpDestination, RateContext } from '../src/destination.ts'
import { HttpSender } from '../src/http-sender.ts'
import { createDestinationMetrics } from '../src/metrics.ts'
import { RateLimiter } from '../src/rate-limiter.ts'
import { RedisGate } from '../src/redis-gate.ts'

interface TestConnection extends Connection {
  endpoint: string
  authorization: string
}
interface Item {
  type: 'identify'
  messageId: string
  userId: string
  timestamp: string
  traits?: Record<string, unknown>
}

// A minimal Segment-shaped destination, so the runtime is tested without services/segment.
const destination: HttpDestination<never, TestConnection, Item> = {
  kind: 'http',
  name: 'segment',
  integrationKey: 'Segment',
  config: undefined as never,
  limits: { maxBatchItems: 10, maxBatchBytes: 64 * 1024, maxItemBytes: 32 * 1024, lingerMs: 5 },
  connections: () => new Map(),
  allowedHosts: () => [],
  toItem: (message) => message as unknown as Item,
  buildRequest: (items: readonly EncodedItem<Item>[], connection) => ({
    url: `${connection.endpoint}/v1/batch`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: connection.authorization },
    body: `{"batch":[${items.map((i) => i.json).join(',')}]}`,
  }),
  classify: (response, items): Classification => {
    if (response.status === 400) return { kind: 'split', reason: `HTTP 400: ${response.body}` }
    if (response.status < 300) return { kind: 'items', outcomes: items.map(() => ({ kind: 'delivered' })) }
    if (response.status === 401) return { kind: 'items', outcomes: items.map(() => ({ kind: 'auth', reason: '401' })) }
    const retryAfter = response.headers['retry-after']
    return {
      kind: 'items',
      outcomes: items.map(() => ({
        kind: 'retryable',
        reason: `HTTP ${response.status}`,
        retryAfterMs: typeof retryAfter === 'string' ? Number(retryAfter) * 1000 : undefined,
      })),
    }
  },
}

let redisServer: Awaited<ReturnType<typeof startRedis>>
let redis: Redis
let simulator: Simulator
let sender: HttpSender
/** For the tests that make the simulator hang: a request times out after 500 ms. */
let quickSender: HttpSender

beforeAll(async () => {
  redisServer = await startRedis()
  redis = new Redis(redisServer.url)
  // Events over 2 KB make the simulator reject the whole batch with 400, as Segment does over 32 KB.
  simulator = await startSegmentSimulator({ writeKeys: ['wk'], maxItemBytes: 2048, rateLimit: null })
  // A generous timeout: on a busy machine a request may take well over 500 ms, and a timeout would add a request.
  sender = new HttpSender({ allowedHosts: ['127.0.0.1'], timeoutMs: 10_000, connectionsPerOrigin: 4 })
  quickSender = new HttpSender({ allowedHosts: ['127.0.0.1'], timeoutMs: 500, connectionsPerOrigin: 4 })
})

afterEach(() => simulator.reset())

afterAll(async () => {
  await sender.close()
  await quickSender.close()
  await simulator.close()
  redis.disconnect()
  await redisServer.stop()
})

function setup(
  overrides: {
    quickAttempts?: number
    rps?: number
    maxBatchItems?: number
    classify?: typeof destination.classify
    http?: HttpSender
    lingerMs?: number
    decreaseFactor?: number
    rateFeedback?: HttpDestination<never, TestConnection, Item>['rateFeedback']
  } = {},
) {
  const registry = new Registry()
  const metrics = createDestinationMetrics(registry)
  const log = pino({ level: 'silent' })
  const controller = new AbortController()
  const connection: TestConnection = {
    name: `c-${Math.random().toString(36).slice(2)}`,
    rateLimitRps: overrides.rps ?? 1000,
    ...(overrides.decreaseFactor === undefined ? {} : { rateLimitDecreaseFactor: overrides.decreaseFactor }),
    endpoint: simulator.url,
    authorization: `Basic ${Buffer.from('wk:').toString('base64')}`,
  }
  const deliverer = new Deliverer({
    destination: {
      ...destination,
      limits: { ...destination.limits, maxBatchItems: overrides.maxBatchItems ?? destination.limits.maxBatchItems },
      ...(overrides.classify ? { classify: overrides.classify } : {}),
      ...(overrides.rateFeedback ? { rateFeedback: overrides.rateFeedback } : {}),
    },
    http: overrides.http ?? sender,
    rateLimiter: new RateLimiter(redis),
    dedupe: new Dedupe(redis, `segment-${connection.name}`),
    redis: new RedisGate(log),
    metrics,
    log,
    policy: {
      quickAttempts: overrides.quickAttempts ?? 4,
      backoff: { baseMs: 20, maxMs: 200 },
      authBackoff: { baseMs: 50, maxMs: 100 },
      maxInFlightPerConnection: 2,
      lingerMs: overrides.lingerMs ?? 5,
    },
    signal: controller.signal,
  })
  const submit = (items: Item[]): Promise<FinalOutcome[]> =>
    Promise.all(
      items.map(
        (item) =>
          new Promise<FinalOutcome>((resolve) => {
            const json = JSON.stringify(item)
            deliverer.submit(connection, {
              messageId: item.messageId,
              encoded: { item, json, bytes: Buffer.byteLength(json) },
              attempts: 0,
              resolve,
            })
          }),
      ),
    )
  return { deliverer, submit, registry, metrics, connection, controller }
}

function items(n: number, prefix = `m-${Date.now()}`, traits?: (i: number) => Record<string, unknown>): Item[] {
  return Array.from({ length: n }, (_, i) => ({
    type: 'identify' as const,
    messageId: `${prefix}-${i}`,
    userId: `u-${i}`,
    timestamp: '2026-11-22T06:00:00Z',
    ...(traits ? { traits: traits(i) } : {}),
  }))
}

describe('Deliverer against the Segment simulator and real Redis', () => {
  it('delivers every item once, in batches of at most maxBatchItems', async () => {
    // A linger far longer than queueing 35 items takes, even on a machine that preempts this process meanwhile:
    // only full batches go before it ends.
    const { submit } = setup({ lingerMs: 1000 })
    const outcomes = await submit(items(35))
    expect(outcomes.every((o) => o.kind === 'delivered')).toBe(true)
    expect(simulator.state.acceptedIds.size).toBe(35)
    const requests = simulator.state.requests.toArray()
    expect(requests.every((r) => r.items <= 10)).toBe(true)
    expect(requests.map((r) => r.items)).toEqual([10, 10, 10, 5])
  })

  it('bisects a batch rejected with 400 so only the bad items fail, with the reason', async () => {
    const { submit } = setup()
    const batch = items(10, `bad-${Date.now()}`, (i) => (i === 3 || i === 7 ? { blob: 'x'.repeat(3000) } : { i }))
    const outcomes = await submit(batch)
    const failed = outcomes.flatMap((o, i) => (o.kind === 'dead-letter' ? [i] : []))
    expect(failed).toEqual([3, 7])
    expect(outcomes[3]).toMatchObject({ kind: 'dead-letter', errorClass: 'permanent' })
    expect((outcomes[3] as { reason: string }).reason).toMatch(/^HTTP 400/)
    expect(simulator.state.acceptedIds.size).toBe(8)
  })

  it('honours Retry-After on a 429: no request before it elapsed', async () => {
    const { submit } = setup()
    simulator.faults.configure({ script: [{ type: 'status', status: 429, headers: { 'retry-after': '1' }, count: 1 }] })
    const outcomes = await submit(items(5))
    expect(outcomes.every((o) => o.kind === 'delivered')).toBe(true)
    const [limited, next] = simulator.state.requests.toArray()
    expect(limited?.status).toBe(429)
    expect(next!.receivedAt - limited!.respondedAt).toBeGreaterThanOrEqual(1000)
  })

  it("lowers the shared rate on a 429 by the connection's decrease factor (half by default)", async () => {
    for (const [factor, expected] of [
      [undefined, 500],
      [0.9, 900],
    ] as const) {
      simulator.reset()
      const { submit, connection } = setup(factor === undefined ? {} : { decreaseFactor: factor })
      simulator.faults.configure({
        script: [{ type: 'status', status: 429, headers: { 'retry-after': '0' }, count: 1 }],
      })
      const outcomes = await submit(items(3))
      expect(outcomes.every((o) => o.kind === 'delivered')).toBe(true)
      const rate = Number(await redis.hget(RateLimiter.key(destination.name, connection.name), 'rate'))
      // Lowered from the configured 1,000/s, then recovering by at most a few per second since.
      expect(rate).toBeGreaterThanOrEqual(expected)
      expect(rate).toBeLessThan(expected + 50)
    }
  })

  it('retries 500s and timeouts to success', async () => {
    const { submit, registry } = setup({ http: quickSender })
    simulator.faults.configure({
      script: [
        { type: 'status', status: 500, count: 2 },
        { type: 'hang', count: 1 },
      ],
    })
    const outcomes = await submit(items(3))
    expect(outcomes.every((o) => o.kind === 'delivered')).toBe(true)
    expect(simulator.state.acceptedIds.size).toBe(3)
    const retries = await registry.getSingleMetric('lookstream_destination_retries_total')!.get()
    expect(retries.values.find((v) => v.labels.stage === 'in_process')?.value).toBe(9)
  })

  it('parks items in the retry topic once the quick attempts are used up', async () => {
    const { submit } = setup({ quickAttempts: 2 })
    simulator.faults.configure({ script: [{ type: 'status', status: 503, count: 2 }] })
    const outcomes = await submit(items(2))
    expect(outcomes).toEqual([
      { kind: 'retry-later', reason: 'HTTP 503', code: 'LS_DEST_RETRYABLE' },
      { kind: 'retry-later', reason: 'HTTP 503', code: 'LS_DEST_RETRYABLE' },
    ])
    expect(simulator.state.acceptedIds.size).toBe(0)
  })

  it('pauses the connection on 401 (alert gauge), keeps probing, and resumes without dead-lettering', async () => {
    const { submit, registry, connection } = setup()
    simulator.faults.configure({ script: [{ type: 'status', status: 401, count: 3 }] })
    const pending = submit(items(4))
    const paused = async () =>
      (await registry.getSingleMetric('lookstream_destination_connection_paused')!.get()).values.find(
        (v) => v.labels.connection === connection.name,
      )?.value
    const deadline = Date.now() + 5000
    while ((await paused()) !== 1 && Date.now() < deadline) await sleep(5)
    expect(await paused()).toBe(1)
    const outcomes = await pending
    expect(outcomes.every((o) => o.kind === 'delivered')).toBe(true)
    const resumeDeadline = Date.now() + 5000
    while ((await paused()) !== 0 && Date.now() < resumeDeadline) await sleep(5)
    expect(await paused()).toBe(0)
    expect(simulator.state.requests.toArray().map((r) => r.status)).toEqual([401, 401, 401, 200])
  })

  it('gives every job back as abandoned when shutdown cuts the wait of a paused connection short', async () => {
    const { submit, registry, controller, connection } = setup()
    simulator.faults.configure({ script: [{ type: 'status', status: 401, count: 1000 }] })
    const first = submit(items(3, `held-${Date.now()}`))
    const paused = async () =>
      (await registry.getSingleMetric('lookstream_destination_connection_paused')!.get()).values.find(
        (v) => v.labels.connection === connection.name,
      )?.value
    const deadline = Date.now() + 5000
    while ((await paused()) !== 1 && Date.now() < deadline) await sleep(5)
    // Queued behind the paused connection: never sent while it is paused.
    const second = submit(items(2, `queued-${Date.now()}`))
    controller.abort(new Error('shutting down'))
    const outcomes = [...(await first), ...(await second)]
    expect(outcomes).toEqual(Array.from({ length: 5 }, () => ({ kind: 'abandoned' })))
    expect(simulator.state.acceptedIds.size).toBe(0)
  })

  it('settles per item when the API reports partial errors (Braze errors[].index): only those fail', async () => {
    const { submit } = setup({
      // As Braze answers 2xx with errors[{index}] for the items it refused: here the odd-numbered users.
      classify: (response, sent) => ({
        kind: 'items',
        outcomes: sent.map((item) =>
          Number(item.item.userId.slice(2)) % 2 === 1
            ? { kind: 'permanent', reason: `HTTP ${response.status}: item refused` }
            : { kind: 'delivered' },
        ),
      }),
    })
    const outcomes = await submit(items(6, `partial-${Date.now()}`))
    expect(outcomes.map((o) => o.kind)).toEqual([
      'delivered',
      'dead-letter',
      'delivered',
      'dead-letter',
      'delivered',
      'dead-letter',
    ])
    expect(simulator.state.requests.size).toBe(1)
  })

  it('parks a batch whose classifier throws (a bug) instead of losing it or crashing', async () => {
    const { submit } = setup({
      classify: () => {
        throw new Error('unexpected body')
      },
    })
    const outcomes = await submit(items(2))
    expect(outcomes).toEqual([
      { kind: 'retry-later', reason: 'unexpected error: unexpected body', code: 'LS_DEST_INTERNAL' },
      { kind: 'retry-later', reason: 'unexpected error: unexpected body', code: 'LS_DEST_INTERNAL' },
    ])
  })

  it("applies a destination's usage hint to the connection's shared schedule: later requests are booked at the share asked", async () => {
    const contexts: RateContext[] = []
    const made: string[] = []
    const { submit, registry, connection } = setup({
      rps: 20,
      maxBatchItems: 1,
      rateFeedback: (conn) => {
        made.push(conn.name)
        return (response, context) => {
          contexts.push(context)
          return response.status === 200 ? { share: 0.5 } : undefined
        }
      },
    })
    const outcomes = await submit(items(12))
    expect(outcomes.every((o) => o.kind === 'delivered')).toBe(true)
    // One reader per connection, fed every response with the schedule's rates and the booked time.
    expect(made).toEqual([connection.name])
    expect(contexts).toHaveLength(12)
    expect(contexts[0]!.configuredRate).toBe(20)
    expect(contexts[0]!.rate).toBeCloseTo(20, 0)
    expect(contexts.every((c) => Number.isFinite(c.bookedAt))).toBe(true)
    // Booked after the first hint: 10/s (the share, plus what it regained since: 10 % of 20 per second).
    expect(contexts.at(-1)!.rate).toBeGreaterThanOrEqual(10)
    expect(contexts.at(-1)!.rate).toBeLessThan(12)
    const share = Number(await redis.hget(RateLimiter.key('segment', connection.name), 'share'))
    expect(share).toBeGreaterThanOrEqual(0.5)
    expect(share).toBeLessThan(0.6)
    const hints = await registry.getSingleMetric('lookstream_destination_rate_hints_total')?.get()
    expect(hints?.values[0]?.value).toBe(12)
  })

  it('ignores a usage hint whose share is out of (0, 1] and still delivers', async () => {
    const { submit, registry, connection } = setup({
      rateFeedback: () => () => ({ share: Number.NaN }),
    })
    const outcomes = await submit(items(3))
    expect(outcomes.every((o) => o.kind === 'delivered')).toBe(true)
    expect(await redis.hget(RateLimiter.key('segment', connection.name), 'share')).toBe('1')
    const hints = await registry.getSingleMetric('lookstream_destination_rate_hints_total')?.get()
    expect(hints?.values ?? []).toEqual([])
  })

  it('keeps the request rate within the shared limit', async () => {
    const { submit } = setup({ rps: 20, maxBatchItems: 1 })
    // 30 requests of one item at 20/s: about 1.5 s; no window of 1 s may hold more than 20 (+1 for the first).
    const outcomes = await submit(items(30))
    expect(outcomes.every((o) => o.kind === 'delivered')).toBe(true)
    expect(simulator.state.requests.size).toBe(30)
    const times = simulator.state.requests.toArray().map((r) => r.receivedAt)
    for (const start of times) {
      expect(times.filter((t) => t >= start && t < start + 1000).length).toBeLessThanOrEqual(21)
    }
  })
})
