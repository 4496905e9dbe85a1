import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { waitFor } from '@lookstream/testing'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { identifyLook } from './support/looks.ts'
import { acceptedFor, startPipeline, waitForAccepted, type Pipeline } from './support/pipeline.ts'

// Destination faults seen end to end: the Segment simulator answers 429/500/400 or hangs while a Looker send,
// streamed through the ingress and local-kafka, is delivered by the segment service process.

const run = promisify(execFile)
let pipeline: Pipeline

beforeAll(async () => {
  pipeline = await startPipeline()
}, 120_000)

afterEach(async () => {
  await pipeline.stopSegments()
  // reset() keeps limits: a test that set one takes it away again here.
  pipeline.simulator.rateLimits.requests!.setLimit(null)
  pipeline.simulator.reset()
}, 60_000)

afterAll(async () => {
  await pipeline?.stop()
}, 60_000)

function prefix(): string {
  return `f${randomUUID().slice(0, 8)}`
}

const DLQ_CLI = fileURLToPath(new URL('../packages/destination/src/cli/dlq.ts', import.meta.url))

async function dlqCommand(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--conditions=@lookstream/source', DLQ_CLI, ...args], {
    env: { PATH: process.env.PATH, KAFKA_BROKERS: pipeline.kafka.brokers, REDIS_URL: pipeline.redis.url },
    timeout: 90_000,
  })
  return stdout
}

function messageIdOf(payload: string): string {
  return (JSON.parse(payload) as { messageId: string }).messageId
}

function expectExactlyOnce(p: string, count: number): void {
  const accepted = acceptedFor(pipeline.simulator, p)
  expect(accepted).toHaveLength(count)
  expect(new Set(accepted.map((a) => a.messageId)).size).toBe(count)
}

describe('pipeline: destination faults', () => {
  it('429 with Retry-After: no request reaches the simulator before Retry-After has elapsed, then every row is accepted once', async () => {
    const retryAfterSeconds = 2
    // One request in flight per connection, so that "the next request" after a 429 is one the service chose to
    // send after reading it (with more in flight, requests already on the wire would arrive after the 429).
    await pipeline.startSegment({ DELIVERY_MAX_IN_FLIGHT_REQUESTS: '1', DELIVERY_MAX_BATCH_ITEMS: '100' })
    pipeline.simulator.faults.failNext(3, {
      type: 'status',
      status: 429,
      headers: { 'retry-after': String(retryAfterSeconds) },
    })
    const p = prefix()
    const look = identifyLook({ prefix: p, rows: 600 })
    const sent = await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 7001 })
    expect(sent.looker.rows?.accepted).toBe(600)

    await waitForAccepted(pipeline.simulator, p, 600, 90_000)
    expectExactlyOnce(p, 600)
    const log = pipeline.simulator.state.requests.toArray().sort((a, b) => a.receivedAt - b.receivedAt)
    const throttled = log.filter((r) => r.status === 429)
    expect(throttled).toHaveLength(3)
    for (const answer of throttled) {
      const early = log.filter(
        (r) => r.receivedAt > answer.respondedAt && r.receivedAt < answer.respondedAt + retryAfterSeconds * 1000 - 5,
      )
      expect(early, `requests within ${retryAfterSeconds} s after the 429 answered at ${answer.respondedAt}`).toEqual(
        [],
      )
    }
    // Three back-to-back 429s: the send took at least three Retry-After periods.
    const first = log[0]!.receivedAt
    const lastThrottled = throttled.at(-1)!
    expect(lastThrottled.respondedAt - first).toBeGreaterThanOrEqual(2 * retryAfterSeconds * 1000 - 5)
  }, 150_000)

  it("the simulator's own rate limit (429, Retry-After: 1): no request before it elapses, the shared rate drops, every row accepted once", async ({
    annotate,
  }) => {
    // Segment's limit is per write key; here 5 requests per second against a service configured for 50.
    pipeline.simulator.rateLimits.requests!.setLimit({ limit: 5, windowMs: 1000 })
    await pipeline.startSegment({
      SEGMENT_RATE_LIMIT_RPS: '50',
      DELIVERY_MAX_IN_FLIGHT_REQUESTS: '1',
      DELIVERY_MAX_BATCH_ITEMS: '20',
    })
    const p = prefix()
    const look = identifyLook({ prefix: p, rows: 800 })
    await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 7006 })

    await waitForAccepted(pipeline.simulator, p, 800, 120_000)
    expectExactlyOnce(p, 800)
    const log = pipeline.simulator.state.requests.toArray().sort((a, b) => a.receivedAt - b.receivedAt)
    const throttled = log.filter((r) => r.status === 429)
    expect(throttled.length).toBeGreaterThan(0)
    for (const answer of throttled) {
      // With 1-second windows the simulator always answers Retry-After: 1.
      const early = log.filter((r) => r.receivedAt > answer.respondedAt && r.receivedAt < answer.respondedAt + 995)
      expect(early, `requests within 1 s after the 429 answered at ${answer.respondedAt}`).toEqual([])
    }
    // The service lowers the shared rate on 429s instead of hammering: most requests get through.
    const accepted = log.filter((r) => r.status === 200).length
    await annotate(`${accepted} requests accepted, ${throttled.length} answered 429`)
    expect(throttled.length).toBeLessThan(accepted)
  }, 180_000)

  it('500s, hung requests (timeouts) and reset connections are retried in process until every row is accepted once', async () => {
    await pipeline.startSegment({ DELIVERY_MAX_BATCH_ITEMS: '100', DELIVERY_REQUEST_TIMEOUT_MS: '1000' })
    const faults = pipeline.simulator.faults
    faults.failNext(2, { type: 'status', status: 500 })
    faults.failNext(2, { type: 'hang' })
    faults.failNext(1, { type: 'reset' })
    faults.failNext(1, { type: 'status', status: 503 })
    const p = prefix()
    const look = identifyLook({ prefix: p, rows: 1000 })
    await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 7002 })

    await waitForAccepted(pipeline.simulator, p, 1000, 90_000)
    expectExactlyOnce(p, 1000)
    const statuses = pipeline.simulator.state.requests.toArray().map((r) => r.status)
    expect(statuses.filter((s) => s === 500)).toHaveLength(2)
    expect(statuses.filter((s) => s === 503)).toHaveLength(1)
    // hang and reset are logged with status 0 (no answer).
    expect(statuses.filter((s) => s === 0)).toHaveLength(3)
    expect(pipeline.simulator.state.counters.duplicates).toBe(0)
  }, 150_000)

  it('an outage longer than the in-process retries parks messages in lookstream.retry.segment, and they are delivered once after it', async () => {
    await pipeline.startSegment({
      DELIVERY_MAX_BATCH_ITEMS: '100',
      DELIVERY_QUICK_ATTEMPTS: '2',
      DELIVERY_RETRY_DELAY_MS: '1000',
    })
    pipeline.simulator.faults.startOutage({ type: 'status', status: 500, durationMs: 3000 })
    const p = prefix()
    const look = identifyLook({ prefix: p, rows: 500 })
    await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 7003 })

    await waitForAccepted(pipeline.simulator, p, 500, 120_000)
    expectExactlyOnce(p, 500)
    expect(pipeline.simulator.state.counters.requestsByStatus['500']).toBeGreaterThan(0)
    const parked = (await pipeline.readTopic('lookstream.retry.segment')).filter((r) =>
      (r.value ?? '').includes(`"userId":"${p}-`),
    )
    expect(parked.length).toBeGreaterThan(0)
  }, 180_000)

  it('a batch rejected with 400 is split until only the bad messages remain; they reach lookstream.dlq.segment with their reasons, and the dlq command lists and replays them', async () => {
    await pipeline.startSegment({ DELIVERY_MAX_BATCH_ITEMS: '200' })
    const p = prefix()
    const poisoned = [17, 444]
    for (const index of poisoned) {
      pipeline.simulator.faults.addRule({
        type: 'status',
        status: 400,
        body: { success: false, message: `poisoned ${index}` },
        bodyContains: `"userId":"${p}-${index}"`,
      })
    }
    const look = identifyLook({ prefix: p, rows: 1000 })
    const sent = await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 7004 })

    await waitForAccepted(pipeline.simulator, p, 998, 90_000)
    const dead = await waitFor(
      async () => {
        const records = (await pipeline.readTopic('lookstream.dlq.segment')).filter((r) =>
          (r.value ?? '').includes(`"userId":"${p}-`),
        )
        return records.length >= poisoned.length ? records : false
      },
      { timeoutMs: 60_000, intervalMs: 500, message: 'the poisoned messages on lookstream.dlq.segment' },
    )
    expect(dead.map((r) => (JSON.parse(r.value!) as { userId: string }).userId).sort()).toEqual(
      poisoned.map((i) => `${p}-${i}`).sort(),
    )
    for (const record of dead) {
      expect(record.headers['lookstream-error']).toMatch(/HTTP 400/)
      expect(record.headers['lookstream-error']).toContain('poisoned')
      expect(record.headers['lookstream-original-topic']).toBe('lookstream.identify.v1')
      expect(record.headers['lookstream-send-id']).toBe(sent.looker.send_id)
    }
    expectExactlyOnce(p, 998)
    const accepted = new Set(acceptedFor(pipeline.simulator, p).map((a) => a.item.userId))
    for (const index of poisoned) expect(accepted.has(`${p}-${index}`)).toBe(false)

    // The DLQ command (a process, as an operator runs it) lists them with their reasons, then replays them once
    // the destination accepts them again: the send is complete, still once per messageId.
    const listed = (await dlqCommand('list', '--destination', 'segment', '--reason', 'poisoned', '--json'))
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { messageId: string; error: string; originalTopic: string })
    expect(listed.map((e) => e.messageId).sort()).toEqual(dead.map((r) => messageIdOf(r.value!)).sort())
    for (const entry of listed) expect(entry.error).toMatch(/HTTP 400.*poisoned/)
    pipeline.simulator.faults.clear()
    await dlqCommand('replay', '--destination', 'segment', '--reason', 'poisoned')
    await waitForAccepted(pipeline.simulator, p, 1000, 60_000)
    expectExactlyOnce(p, 1000)
  }, 150_000)

  it('GET /sends/:id shows the dead-lettered count of a send next to its delivered count', async () => {
    await pipeline.startSegment({ DELIVERY_MAX_BATCH_ITEMS: '50' })
    const p = prefix()
    pipeline.simulator.faults.addRule({ type: 'status', status: 400, bodyContains: `"userId":"${p}-3"` })
    const look = identifyLook({ prefix: p, rows: 200 })
    const sent = await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 7005 })
    await waitForAccepted(pipeline.simulator, p, 199, 60_000)
    await waitFor(
      async () => {
        const send = await pipeline.getSend(sent.looker.send_id!)
        return send.delivered === 199 && send.deadLettered === 1
      },
      { timeoutMs: 20_000, message: 'delivered 199 and deadLettered 1 in GET /sends/:id' },
    )
    expect(await pipeline.getSend(sent.looker.send_id!)).toMatchObject({
      status: 'succeeded',
      received: 200,
      accepted: 200,
      delivered: 199,
      deadLettered: 1,
    })
  }, 120_000)
})
