import { runDestination, sendRecordKey, type RunningDestination } from '@lookstream/destination'
import { waitFor } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { segment } from '../src/segment.ts'
import { HEADERS, messageIdOf, newRunId, produceMessages, produceRaw, readTopic } from '@lookstream/delivery-testing'
import { identify, segmentEnv, startSegmentStack, type SegmentStack } from './segment-stack.ts'

let stack: SegmentStack
let redis: Redis
let running: RunningDestination | undefined

beforeAll(async () => {
  // Events over 4 KB make the simulator reject the whole batch with 400 (Segment's rule at 32 KB), while the
  // service still lets them through its own 32 KB check: the bisect path is exercised end to end.
  stack = await startSegmentStack({ maxItemBytes: 4096 })
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
  running = await runDestination(segment, { env: segmentEnv(stack, extra) })
  return running
}

function acceptedIdsWith(prefix: string): string[] {
  return [...stack.simulator.state.acceptedIds.keys()].filter((id) => id.startsWith(prefix))
}

async function metricValue(service: RunningDestination, name: string, labels: Record<string, string> = {}) {
  const metric = await service.service.registry.getSingleMetric(name)?.get()
  return (metric?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0)
}

describe('segment service: Kafka → runtime → Segment simulator', () => {
  it('delivers every message exactly once with the expected body, and re-consuming them delivers nothing new', async () => {
    const run = newRunId()
    const messages = Array.from({ length: 300 }, (_, i) => identify(run, i))
    const service = await start()
    // The ingress creates the send record; the destination only adds its counts to it.
    await redis.hset(sendRecordKey(`send-${run}`), { send_id: `send-${run}`, accepted: '300' })
    await produceMessages(stack, messages, { sendId: `send-${run}` })
    await waitFor(() => acceptedIdsWith(run).length === 300, { timeoutMs: 30_000, message: '300 accepted' })

    const accepted = stack.simulator.state.accepted.toArray().filter((a) => a.id?.startsWith(run))
    const byId = new Map(accepted.map((a) => [a.id, a.item]))
    expect(byId.get(`${run}-7`)).toEqual({
      type: 'identify',
      messageId: `${run}-7`,
      userId: 'user-7',
      traits: { plan: 'monthly', index: 7 },
      timestamp: '2026-11-22T06:00:00.000Z',
    })
    expect(stack.simulator.state.counters.duplicates).toBe(0)
    // Per-send delivered counts reach the ingress's send record.
    await waitFor(async () => (await redis.hget(sendRecordKey(`send-${run}`), 'delivered')) === '300')

    // The same messages again (a replay, or a re-executed Looker send): nothing new reaches Segment.
    await produceMessages(stack, messages, { sendId: `send-${run}` })
    await waitFor(async () => (await metricValue(service, 'lookstream_destination_duplicates_skipped_total')) >= 300, {
      timeoutMs: 30_000,
      message: 'the replayed messages were skipped',
    })
    expect(acceptedIdsWith(run)).toHaveLength(300)
    expect(stack.simulator.state.counters.itemsReceived).toBe(300)
  })

  it('honours Retry-After on 429 and retries 500s and timeouts to success, each message once', async () => {
    const run = newRunId()
    stack.simulator.faults.configure({
      script: [
        { type: 'status', status: 429, headers: { 'retry-after': '1' }, count: 1 },
        { type: 'status', status: 500, count: 2 },
        { type: 'hang', count: 1 },
      ],
    })
    await start({ DELIVERY_QUICK_ATTEMPTS: '6' })
    await produceMessages(
      stack,
      Array.from({ length: 50 }, (_, i) => identify(run, i)),
    )
    await waitFor(() => acceptedIdsWith(run).length === 50, { timeoutMs: 30_000, message: '50 accepted' })
    const log = stack.simulator.state.requests.toArray()
    const limited = log.find((r) => r.status === 429)!
    const after = log.filter((r) => r.receivedAt > limited.receivedAt)
    expect(after.length).toBeGreaterThan(0)
    // No request at all before the Retry-After elapsed.
    for (const request of after) expect(request.receivedAt - limited.respondedAt).toBeGreaterThanOrEqual(1000)
    expect(log.map((r) => r.status)).toEqual(expect.arrayContaining([429, 500]))
    expect(stack.simulator.state.counters.accepted).toBe(50)
  })

  it('splits a batch rejected with 400 so only the bad messages reach the DLQ, with their reasons', async () => {
    const run = newRunId()
    const bad = new Set([5, 17, 33])
    const messages = Array.from({ length: 40 }, (_, i) =>
      identify(run, i, bad.has(i) ? { notes: 'x'.repeat(6000) } : {}),
    )
    await start()
    await produceMessages(stack, messages)
    await waitFor(() => acceptedIdsWith(run).length === 37, { timeoutMs: 30_000, message: '37 accepted' })
    const dead = await readTopic(stack, 'lookstream.dlq.segment', 3, (r) => messageIdOf(r)?.startsWith(run) ?? false)
    expect(dead.map(messageIdOf).sort()).toEqual([...bad].map((i) => `${run}-${i}`).sort())
    for (const record of dead) {
      expect(record.headers[HEADERS.error]).toMatch(/^HTTP 400/)
      expect(record.headers[HEADERS.errorClass]).toBe('permanent')
      expect(record.headers[HEADERS.originalTopic]).toBe('lookstream.identify.v1')
      expect(Number(record.headers[HEADERS.originalOffset])).toBeGreaterThanOrEqual(0)
      expect(Number(record.headers[HEADERS.attempts])).toBeGreaterThanOrEqual(1)
      expect(Date.parse(record.headers[HEADERS.firstAttemptAt]!)).toBeLessThanOrEqual(
        Date.parse(record.headers[HEADERS.lastAttemptAt]!),
      )
    }
  })

  it('dead-letters invalid messages from other producers with the reason, skips foreign ones, and refuses events over 32 KB', async () => {
    const run = newRunId()
    await start()
    await produceRaw(stack, 'lookstream.track.v1', JSON.stringify({ type: 'track', messageId: `${run}-invalid` }), {
      [HEADERS.destinations]: 'segment',
      [HEADERS.producer]: 'billing',
    })
    await produceRaw(stack, 'lookstream.track.v1', 'not json', { [HEADERS.destinations]: 'braze' })
    await produceMessages(stack, [identify(run, 1, { blob: 'y'.repeat(40_000) })])
    await produceMessages(stack, [identify(run, 2)])
    await waitFor(() => acceptedIdsWith(run).length === 1, { message: 'the valid message accepted' })
    const dead = await readTopic(stack, 'lookstream.dlq.segment', 2, (r) => messageIdOf(r)?.startsWith(run) ?? false)
    const reasons = new Map(dead.map((r) => [messageIdOf(r), r.headers[HEADERS.error]]))
    expect(reasons.get(`${run}-invalid`)).toMatch(/^invalid message: .*userId|anonymousId|event/)
    expect(reasons.get(`${run}-1`)).toMatch(/over the 32768-byte limit/)
    expect(stack.simulator.state.counters.itemsReceived).toBe(1)
  })

  it('parks transient failures in the retry topic and delivers them when due', async () => {
    const run = newRunId()
    stack.simulator.faults.configure({ outage: { type: 'status', status: 503, requests: 3 } })
    const service = await start({ DELIVERY_QUICK_ATTEMPTS: '2' })
    await produceMessages(stack, [identify(run, 1)])
    await waitFor(() => acceptedIdsWith(run).length === 1, {
      timeoutMs: 30_000,
      message: 'delivered after a retry cycle',
    })
    expect(
      await metricValue(service, 'lookstream_destination_retries_total', { stage: 'topic' }),
    ).toBeGreaterThanOrEqual(1)
    const parked = await readTopic(stack, 'lookstream.retry.segment', 1, (r) => messageIdOf(r) === `${run}-1`)
    expect(parked[0]!.headers[HEADERS.retryAt]).toBeDefined()
    expect(parked[0]!.headers[HEADERS.error]).toMatch(/HTTP 503/)
  })

  it('dead-letters a message still failing after the retry window, with that reason', async () => {
    const run = newRunId()
    stack.simulator.faults.configure({ outage: { type: 'status', status: 503, durationMs: 60_000 } })
    await start({ DELIVERY_QUICK_ATTEMPTS: '1', DELIVERY_RETRY_WINDOW_HOURS: '0.0005' })
    await produceMessages(stack, [identify(run, 1)])
    const dead = await readTopic(stack, 'lookstream.dlq.segment', 1, (r) => messageIdOf(r) === `${run}-1`)
    expect(dead[0]!.headers['lookstream-error-code']).toBe('LS_DEST_RETRY_WINDOW_EXCEEDED')
    expect(dead[0]!.headers[HEADERS.errorClass]).toBe('retryable')
    expect(dead[0]!.headers[HEADERS.error]).toMatch(/retry window .* exceeded; last error: HTTP 503/)
    expect(Number(dead[0]!.headers[HEADERS.attempts])).toBeGreaterThanOrEqual(2)
    expect(acceptedIdsWith(run)).toHaveLength(0)
  })

  it('pauses the connection on 401 with the alert gauge instead of dead-lettering, and resumes by itself', async () => {
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
    await waitFor(() => acceptedIdsWith(run).length === 20, {
      timeoutMs: 30_000,
      message: '20 accepted after the outage',
    })
    await waitFor(
      async () =>
        (await metricValue(service, 'lookstream_destination_connection_paused', { connection: 'default' })) === 0,
      { message: 'connection resumed' },
    )
    expect(await metricValue(service, 'lookstream_destination_dead_lettered_total')).toBe(0)
  })
})
