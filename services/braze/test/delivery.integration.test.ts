import { runDestination, sendRecordKey, type RunningDestination } from '@lookstream/destination'
import { HEADERS, messageIdOf, newRunId, produceMessages, readTopic } from '@lookstream/delivery-testing'
import { waitFor } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { braze } from '../src/braze.ts'
import {
  acceptedCount,
  brazeEnv,
  expectedAttributes,
  expectedProfile,
  identify,
  profileOf,
  startBrazeStack,
  type BrazeStack,
} from './braze-stack.ts'

let stack: BrazeStack
let redis: Redis
let running: RunningDestination | undefined

beforeAll(async () => {
  stack = await startBrazeStack()
  redis = new Redis(stack.redis.url)
}, 60_000)

afterEach(async () => {
  await running?.close()
  running = undefined
  stack.simulator.reset()
})

afterAll(async () => {
  redis.disconnect()
  await stack.stop()
})

async function start(extra: Record<string, string> = {}): Promise<RunningDestination> {
  running = await runDestination(braze, { env: brazeEnv(stack, extra) })
  return running
}

async function metricValue(service: RunningDestination, name: string, labels: Record<string, string> = {}) {
  const metric = await service.service.registry.getSingleMetric(name)?.get()
  return (metric?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0)
}

function dlqOf(run: string, count: number) {
  return readTopic(stack, 'lookstream.dlq.braze', count, (r) => messageIdOf(r)?.startsWith(`${run}-`) ?? false)
}

describe('braze service: Kafka → runtime → Braze simulator', () => {
  it('delivers every row once in the action hub body shape, at most 75 per request, and a replay delivers nothing new', async () => {
    const run = newRunId()
    const total = 400
    const messages = Array.from({ length: total }, (_, i) => identify(run, i, { 'Lifetime Value': i * 10, nick: null }))
    const service = await start()
    await redis.hset(sendRecordKey(`send-${run}`), { send_id: `send-${run}`, accepted: String(total) })
    await produceMessages(stack, messages, { sendId: `send-${run}` })
    await waitFor(() => stack.simulator.state.acceptedIds.size === total, {
      timeoutMs: 30_000,
      message: `${total} users updated`,
    })

    expect(acceptedCount(stack)).toBe(total)
    const bodies = new Map(
      stack.simulator.state.accepted.toArray().map((a) => [(a.item as { external_id: string }).external_id, a.item]),
    )
    for (let i = 0; i < total; i++) {
      expect(bodies.get(`user-${i}`)).toEqual(expectedAttributes(i, { 'Lifetime Value': i * 10 }))
      expect(profileOf(stack, i)).toEqual(expectedProfile(i, { 'Lifetime Value': i * 10 }))
    }
    const requests = stack.simulator.state.requests.toArray()
    expect(requests.every((r) => r.status === 201 && r.items <= 75 && r.headers.authorization === 'Bearer')).toBe(true)
    await waitFor(async () => (await redis.hget(sendRecordKey(`send-${run}`), 'delivered')) === String(total))

    await produceMessages(stack, messages, { sendId: `send-${run}` })
    await waitFor(
      async () => (await metricValue(service, 'lookstream_destination_duplicates_skipped_total')) >= total,
      { timeoutMs: 30_000, message: 'the replayed rows were skipped' },
    )
    expect(acceptedCount(stack)).toBe(total)
    expect(stack.simulator.state.counters.requests).toBe(requests.length)
  })

  it('BRAZE_BULK: every row once through /users/track/bulk, up to 1,000 objects a request', async () => {
    const run = newRunId()
    const total = 2500
    const messages = Array.from({ length: total }, (_, i) => identify(run, i))
    await start({ BRAZE_BULK: 'true' })
    await produceMessages(stack, messages)
    await waitFor(() => stack.simulator.state.acceptedIds.size === total, {
      timeoutMs: 30_000,
      message: `${total} users updated`,
    })
    expect(acceptedCount(stack)).toBe(total)
    for (let i = 0; i < total; i += 97) expect(profileOf(stack, i)).toEqual(expectedProfile(i))
    const requests = stack.simulator.state.requests.toArray()
    expect(requests.every((r) => r.path === '/users/track/bulk' && r.status === 201 && r.items <= 1000)).toBe(true)
    // Batches past /users/track's 75: the rows went in fewer, larger requests.
    expect(Math.max(...requests.map((r) => r.items))).toBeGreaterThan(75)
    expect(requests.length).toBeLessThan(total / 75)
  })

  it('sends nulls when the send says so, so Braze removes the attribute', async () => {
    const run = newRunId()
    stack.simulator.profiles.seed([{ external_id: 'user-1', attributes: { nick: 'old', plan: 'trial' } }])
    await start()
    await produceMessages(stack, [identify(run, 1, { nick: null }, { nulls: 'send', updateExistingOnly: true })])
    await waitFor(() => acceptedCount(stack) === 1, { message: 'the update accepted' })
    expect(stack.simulator.state.accepted.toArray()[0]!.item).toEqual({
      ...expectedAttributes(1),
      _update_existing_only: true,
      nick: null,
    })
    expect(profileOf(stack, 1)).toEqual({ plan: 'monthly', index: 1, looker_export: ['WINBACK_Q3'] })
  })

  it("partial errors: exactly the rows Braze names go to the DLQ with Braze's reason; rows it cannot take never leave", async () => {
    const run = newRunId()
    const total = 200
    const badEmail = new Set([3, 76, 150, 151])
    const unsendable = new Set([10, 99])
    const messages = Array.from({ length: total }, (_, i) =>
      identify(
        run,
        i,
        badEmail.has(i)
          ? { email: 'not-an-email' }
          : unsendable.has(i)
            ? { address: { city: 'Paris' }, bio: 'b'.repeat(300) }
            : { email: `user-${i}@example.com` },
      ),
    )
    const service = await start()
    await produceMessages(stack, messages)
    const dead = await dlqOf(run, badEmail.size + unsendable.size)
    const reasons = new Map(dead.map((r) => [messageIdOf(r), r.headers]))
    expect([...reasons.keys()].sort()).toEqual([...badEmail, ...unsendable].map((i) => `${run}-${i}`).sort())
    for (const i of badEmail) {
      const headers = reasons.get(`${run}-${i}`)!
      expect(headers[HEADERS.error]).toBe(
        "Braze rejected it: The value provided for the 'email' field is not a valid email.",
      )
      expect(headers['lookstream-error-code']).toBe('LS_DEST_REJECTED')
      expect(headers[HEADERS.errorClass]).toBe('permanent')
    }
    for (const i of unsendable) {
      const headers = reasons.get(`${run}-${i}`)!
      expect(headers[HEADERS.error]).toBe(
        'attribute "address" holds an object (Braze takes strings, numbers, booleans, dates and arrays of strings); attribute "bio" holds a string over 255 characters',
      )
      expect(headers['lookstream-error-code']).toBe('LS_DEST_UNSUPPORTED_VALUE')
    }
    const good = total - badEmail.size - unsendable.size
    await waitFor(async () => (await metricValue(service, 'lookstream_destination_delivered_total')) === good, {
      message: `${good} delivered`,
    })
    expect(acceptedCount(stack)).toBe(good)
    // The unsendable rows never reached Braze; the bad emails reached it once each and were refused.
    expect(stack.simulator.state.counters.itemsReceived).toBe(total - unsendable.size)
    expect(stack.simulator.state.counters.rejected).toBe(badEmail.size)
    for (let i = 0; i < total; i++) {
      if (badEmail.has(i) || unsendable.has(i)) expect(profileOf(stack, i)).toBeUndefined()
      else expect(profileOf(stack, i)).toEqual(expectedProfile(i, { email: `user-${i}@example.com` }))
    }
  })

  it('a fatal 400 with errors[]: the named rows go to the DLQ with the reason, nothing is retried', async () => {
    const run = newRunId()
    const messages = Array.from({ length: 5 }, (_, i) => identify(run, i, { email: `broken-${i}` }))
    const service = await start()
    await produceMessages(stack, messages)
    const dead = await dlqOf(run, 5)
    expect(new Set(dead.map(messageIdOf)).size).toBe(5)
    for (const record of dead) {
      expect(record.headers[HEADERS.error]).toBe(
        "Braze rejected it: The value provided for the 'email' field is not a valid email.",
      )
    }
    expect(stack.simulator.state.counters.requestsByStatus['400']).toBeGreaterThanOrEqual(1)
    expect(await metricValue(service, 'lookstream_destination_retries_total')).toBe(0)
    expect(stack.simulator.profiles.size).toBe(0)
  })

  it('429 with Retry-After, X-RateLimit-Retry-After and X-RateLimit-Reset: no request before each wait; then 500s and a timeout; every row once', async () => {
    const run = newRunId()
    const resetAt = Math.ceil(Date.now() / 1000) + 4
    stack.simulator.faults.configure({
      script: [
        { type: 'status', status: 429, headers: { 'retry-after': '1' }, count: 1 },
        { type: 'status', status: 429, headers: { 'x-ratelimit-retry-after': '1' }, count: 1 },
        { type: 'status', status: 429, headers: { 'x-ratelimit-reset': String(resetAt) }, count: 1 },
        { type: 'status', status: 500, count: 2 },
        { type: 'hang', count: 1 },
      ],
    })
    await start({ DELIVERY_QUICK_ATTEMPTS: '10', DELIVERY_MAX_IN_FLIGHT_REQUESTS: '1' })
    const total = 60
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => identify(run, i)),
    )
    await waitFor(() => acceptedCount(stack) === total, { timeoutMs: 40_000, message: `${total} accepted` })
    const log = stack.simulator.state.requests.toArray()
    const limited = log.filter((r) => r.status === 429)
    expect(limited).toHaveLength(3)
    const waits = [1000, 1000, undefined]
    // The simulator stamps requests from the monotonic clock (performance.timeOrigin + performance.now(), in this
    // process); X-RateLimit-Reset is wall-clock time, which the service reads from Date.now(). The two drift apart
    // while the process runs (clock slewing), so the wait for the reset is checked on the wall clock.
    const wallClockMinusStamps = Date.now() - (performance.timeOrigin + performance.now())
    limited.forEach((entry, n) => {
      const next = log.find((r) => r.receivedAt > entry.receivedAt)
      expect(next, `a request after 429 #${n + 1}`).toBeDefined()
      const wait = waits[n]
      if (wait !== undefined) expect(next!.receivedAt - entry.respondedAt).toBeGreaterThanOrEqual(wait)
      else expect(next!.receivedAt + wallClockMinusStamps).toBeGreaterThanOrEqual(resetAt * 1000 - 1)
    })
    expect(log.filter((r) => r.status === 500)).toHaveLength(2)
    expect(log.some((r) => r.status === 0)).toBe(true)
    expect(acceptedCount(stack)).toBe(total)
    for (let i = 0; i < total; i++) expect(profileOf(stack, i)).toEqual(expectedProfile(i))
  })

  it('401 pauses the connection (alert gauge) instead of dead-lettering, and it resumes by itself', async () => {
    const run = newRunId()
    stack.simulator.faults.configure({ outage: { type: 'status', status: 401, durationMs: 1500 } })
    const service = await start({ DELIVERY_AUTH_PROBE_MAX_MS: '300' })
    await produceMessages(
      stack,
      Array.from({ length: 20 }, (_, i) => identify(run, i)),
    )
    await waitFor(
      async () =>
        (await metricValue(service, 'lookstream_destination_connection_paused', { connection: 'default' })) === 1,
      { message: 'connection paused' },
    )
    await waitFor(() => acceptedCount(stack) === 20, { timeoutMs: 30_000, message: '20 accepted after the outage' })
    expect(await metricValue(service, 'lookstream_destination_dead_lettered_total')).toBe(0)
  })
})
