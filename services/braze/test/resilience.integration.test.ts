import { runDestination, type RunningDestination } from '@lookstream/destination'
import { HEADERS, messageIdOf, newRunId, produceMessages, readTopic } from '@lookstream/delivery-testing'
import { spawnService, startRedis, waitFor, type SpawnedService } from '@lookstream/testing'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { braze } from '../src/braze.ts'
import {
  acceptedCount,
  brazeEnv,
  expectedProfile,
  identify,
  profileOf,
  startBrazeStack,
  type BrazeStack,
} from './braze-stack.ts'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
/** Requests in flight per connection, as the service runs by default. */
const IN_FLIGHT = braze.inFlightRequests ?? 4

let stack: BrazeStack
const running: RunningDestination[] = []
const spawned: SpawnedService[] = []

beforeAll(async () => {
  stack = await startBrazeStack()
}, 60_000)

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()))
  // SIGTERM: the tests share the topics and the consumer group, so each service commits what it delivered.
  await Promise.all(spawned.splice(0).map((s) => s.stop('SIGTERM', 15_000)))
  stack.simulator.rateLimits.requests!.setLimit(null)
  stack.simulator.reset()
})

afterAll(async () => {
  await stack.stop()
})

const BAD_EMAIL = "Braze rejected it: The value provided for the 'email' field is not a valid email."

/** `total` rows; those in `bad` carry an email Braze refuses. */
function rows(run: string, total: number, bad: ReadonlySet<number>) {
  return Array.from({ length: total }, (_, i) => identify(run, i, { email: bad.has(i) ? 'nope' : `u${i}@example.com` }))
}

/** The final state: every good row's profile exactly as expected, no profile for a refused row. */
function expectFinalState(total: number, bad: ReadonlySet<number>): void {
  for (let i = 0; i < total; i++) {
    if (bad.has(i)) expect(profileOf(stack, i), `row ${i}`).toBeUndefined()
    else expect(profileOf(stack, i), `row ${i}`).toEqual(expectedProfile(i, { email: `u${i}@example.com` }))
  }
  expect(stack.simulator.profiles.size).toBe(total - bad.size)
}

/** The DLQ holds exactly the refused rows of this run, each with Braze's reason. */
async function expectDeadLettered(run: string, bad: ReadonlySet<number>): Promise<void> {
  const dead = await readTopic(
    stack,
    'lookstream.dlq.braze',
    bad.size,
    (r) => messageIdOf(r)?.startsWith(`${run}-`) ?? false,
  )
  expect(new Set(dead.map(messageIdOf))).toEqual(new Set([...bad].map((i) => `${run}-${i}`)))
  for (const record of dead) expect(record.headers[HEADERS.error]).toBe(BAD_EMAIL)
}

describe('braze service under failures', () => {
  it('Redis stopped for a few seconds mid-send: delivery waits, readiness says so, then the exact final state', async () => {
    const run = newRunId()
    const total = 1500
    const bad = new Set([7, 400, 1200])
    const service = await runDestination(braze, {
      env: brazeEnv(stack, { BRAZE_RATE_LIMIT_REQUESTS: '150', DELIVERY_MAX_BATCH_ITEMS: '15' }),
    })
    running.push(service)
    await produceMessages(stack, rows(run, total, bad))
    await waitFor(() => acceptedCount(stack) >= 300, { timeoutMs: 30_000, message: '300 accepted' })
    const port = stack.redis.port
    await stack.redis.stop()
    await waitFor(async () => (await fetch(`${service.address.url}/readyz`)).status === 503, {
      timeoutMs: 10_000,
      message: 'readiness to report redis down',
    })
    const acceptedWhileDown = acceptedCount(stack)
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const sentWhileDown = acceptedCount(stack) - acceptedWhileDown
    // Redis comes back before anything is asserted, so a failure here leaves the next tests a working stack.
    stack.redis = await startRedis({ port })
    // At most the requests already past the rate limiter went out; then delivery waited for Redis.
    expect(sentWhileDown).toBeLessThanOrEqual(15 * IN_FLIGHT)
    await waitFor(() => stack.simulator.state.acceptedIds.size === total - bad.size, {
      timeoutMs: 60_000,
      message: `${total - bad.size} users updated`,
    })
    await expectDeadLettered(run, bad)
    expectFinalState(total, bad)
    // The dedupe record of a request accepted while Redis was down could not be written: that request may have
    // been sent again after the restart (attribute sets and the label add are idempotent at Braze).
    expect(acceptedCount(stack) - (total - bad.size)).toBeLessThanOrEqual(15 * IN_FLIGHT)
  }, 120_000)

  it('kill -9 of the service mid-send, then a restart: every row delivered, the exact final state, only refused rows dead-lettered', async () => {
    const run = newRunId()
    const total = 2000
    const bad = new Set([11, 999, 1998])
    const env = brazeEnv(stack, {
      BRAZE_RATE_LIMIT_REQUESTS: '120',
      DELIVERY_MAX_BATCH_ITEMS: '20',
      // spawnService reads the address from Fastify's info-level "Server listening" line.
      LOG_LEVEL: 'info',
    })
    const first = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(first)
    await produceMessages(stack, rows(run, total, bad))
    await waitFor(() => acceptedCount(stack) >= total / 3, { timeoutMs: 30_000, message: 'a third accepted' })
    first.kill('SIGKILL')
    await first.process.exited
    expect(acceptedCount(stack)).toBeLessThan(total - bad.size)

    const second = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(second)
    await waitFor(() => stack.simulator.state.acceptedIds.size === total - bad.size, {
      timeoutMs: 90_000,
      message: `${total - bad.size} users updated`,
    })
    await expectDeadLettered(run, bad)
    expectFinalState(total, bad)
    // Braze has no message id: the requests in flight at the kill (IN_FLIGHT of 20) may have been applied twice.
    expect(acceptedCount(stack) - (total - bad.size)).toBeLessThanOrEqual(20 * IN_FLIGHT)
  }, 180_000)

  it('two replicas share one workspace limit: the combined rate is the configured one (±5 %), 0 simulator 429s under its limit', async () => {
    const run = newRunId()
    // Scaled down from 3,000 per 3 s: the service 15 per 3 s (5 requests/s), Braze (the simulator) 16 per 3 s. At
    // a few requests a second a grant that comes a few milliseconds late (a loaded machine) costs under 5 %.
    stack.simulator.rateLimits.requests!.setLimit({ limit: 16, windowMs: 3000 })
    const configured = 15 / 3
    const env = brazeEnv(stack, {
      BRAZE_RATE_LIMIT_REQUESTS: '15',
      BRAZE_RATE_LIMIT_WINDOW_SECONDS: '3',
      BRAZE_MAX_OBJECTS_PER_REQUEST: '2',
    })
    const a = await runDestination(braze, { env })
    const b = await runDestination(braze, { env })
    running.push(a, b)
    await waitFor(
      async () => (await fetch(`${a.address.url}/readyz`)).ok && (await fetch(`${b.address.url}/readyz`)).ok,
      { timeoutMs: 30_000, message: 'both replicas assigned partitions' },
    )
    const total = 140
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => identify(run, i)),
    )
    await waitFor(() => stack.simulator.state.acceptedIds.size === total, {
      timeoutMs: 60_000,
      message: `${total} users updated`,
    })
    const delivered = async (r: RunningDestination) =>
      (
        (await r.service.registry.getSingleMetric('lookstream_destination_delivered_total')?.get())?.values ?? []
      ).reduce((sum, v) => sum + v.value, 0)
    expect(await delivered(a)).toBeGreaterThan(0)
    expect(await delivered(b)).toBeGreaterThan(0)

    const log = stack.simulator.state.requests.toArray()
    expect(stack.simulator.state.counters.rateLimited).toBe(0)
    expect(log.length).toBeGreaterThanOrEqual(total / 2)
    // The steady rate: the middle 80 % of the requests (the first ones wait for the replicas' first fetches, the
    // last ones for the final, partly filled batches), over the time they took.
    const times = log.map((r) => r.receivedAt).sort((x, y) => x - y)
    const from = Math.floor(times.length * 0.1)
    const to = Math.ceil(times.length * 0.9) - 1
    const rate = ((to - from) * 1000) / (times[to]! - times[from]!)
    expect(rate).toBeGreaterThanOrEqual(configured * 0.95)
    expect(rate).toBeLessThanOrEqual(configured * 1.05)
    let busiest = 0
    for (const start of times) busiest = Math.max(busiest, times.filter((t) => t >= start && t < start + 3000).length)
    expect(busiest).toBeLessThanOrEqual(15 + 1)
    for (let i = 0; i < total; i++) expect(profileOf(stack, i)).toEqual(expectedProfile(i))
  }, 120_000)
})
