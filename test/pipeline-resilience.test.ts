import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { waitFor, type SpawnedService } from '@lookstream/testing'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { identifyLook } from './support/looks.ts'
import { acceptedFor, metricSum, startPipeline, waitForAccepted, type Pipeline } from './support/pipeline.ts'

// Crashes and outages between Kafka and the destination, end to end: a Looker send goes through the ingress
// into local-kafka, and the segment service process is killed, loses Redis, or runs as two replicas.

let pipeline: Pipeline

beforeAll(async () => {
  pipeline = await startPipeline()
}, 120_000)

afterEach(async () => {
  await pipeline.stopSegments()
  pipeline.simulator.reset()
}, 60_000)

afterAll(async () => {
  await pipeline?.stop()
}, 60_000)

function prefix(): string {
  return `r${randomUUID().slice(0, 8)}`
}

/** Resends the simulator saw for this prefix (it deduplicates them by messageId, as Segment does). */
function resendsFor(p: string): number {
  return pipeline.simulator.state.duplicates
    .toArray()
    .filter((d) => (d.item as { userId?: string }).userId?.startsWith(`${p}-`)).length
}

function expectZeroLostZeroDuplicated(p: string, total: number): void {
  const accepted = acceptedFor(pipeline.simulator, p)
  const ids = accepted.map((a) => a.messageId)
  // 0 lost: every row's messageId accepted; 0 duplicates: no messageId accepted (counted) twice.
  expect(new Set(accepted.map((a) => a.item.userId)).size).toBe(total)
  expect(new Set(ids).size).toBe(total)
  expect(ids).toHaveLength(total)
}

async function ready(service: SpawnedService): Promise<number> {
  return (await fetch(`${service.url}/readyz`, { signal: AbortSignal.timeout(2000) })).status
}

describe('pipeline: crashes and shared limits', () => {
  it('kill -9 of the segment service mid-send, then a restart: 0 lost and 0 duplicates at the simulator', async ({
    annotate,
  }) => {
    const batch = 20
    const env = { SEGMENT_RATE_LIMIT_RPS: '20', DELIVERY_MAX_BATCH_ITEMS: String(batch) }
    const first = await pipeline.startSegment(env)
    const p = prefix()
    const total = 2000
    const look = identifyLook({ prefix: p, rows: total })
    const sent = await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 8001 })
    expect(sent.looker.rows?.accepted).toBe(total)

    await waitForAccepted(pipeline.simulator, p, 400, 60_000)
    first.kill('SIGKILL')
    const exit = await first.process.exited
    expect(exit.signal).toBe('SIGKILL')
    pipeline.segments.splice(pipeline.segments.indexOf(first), 1)
    const acceptedAtKill = acceptedFor(pipeline.simulator, p).length
    expect(acceptedAtKill).toBeLessThan(total)

    await pipeline.startSegment(env)
    await waitForAccepted(pipeline.simulator, p, total, 120_000)
    expectZeroLostZeroDuplicated(p, total)
    // Only requests on the wire at the kill can be sent again (Segment drops them by messageId): at most the
    // in-flight window of 4 requests.
    await annotate(`accepted at the kill: ${acceptedAtKill}; resent after the restart: ${resendsFor(p)}`)
    expect(resendsFor(p)).toBeLessThanOrEqual(4 * batch)
  }, 240_000)

  it('Redis stopped for a few seconds mid-send, then restarted: delivery pauses and resumes, 0 lost and 0 duplicates', async ({
    annotate,
  }) => {
    const batch = 20
    const service = await pipeline.startSegment({
      SEGMENT_RATE_LIMIT_RPS: '25',
      DELIVERY_MAX_BATCH_ITEMS: String(batch),
    })
    const p = prefix()
    const total = 2000
    const look = identifyLook({ prefix: p, rows: total })
    await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 8002 })
    await waitForAccepted(pipeline.simulator, p, 300, 60_000)

    let duringOutage = 0
    await pipeline.withRedisDown(async () => {
      await waitFor(async () => (await ready(service)) === 503, { timeoutMs: 15_000, message: 'readyz 503' })
      const atOutage = acceptedFor(pipeline.simulator, p).length
      // The outage itself lasts a few seconds: this wait is the fault's duration, not a synchronisation.
      await sleep(3000)
      duringOutage = acceptedFor(pipeline.simulator, p).length - atOutage
    })
    // Without Redis (dedupe, rate limit) nothing new goes out beyond requests already admitted.
    expect(duringOutage).toBeLessThanOrEqual(4 * batch)
    expect(acceptedFor(pipeline.simulator, p).length).toBeLessThan(total)

    await waitForAccepted(pipeline.simulator, p, total, 120_000)
    await waitFor(async () => (await ready(service)) === 200, { timeoutMs: 30_000, message: 'readyz 200 again' })
    expectZeroLostZeroDuplicated(p, total)
    await annotate(`accepted while Redis was down: ${duringOutage}; resent after it: ${resendsFor(p)}`)
  }, 240_000)

  it('two segment replicas share the partitions and one rate limit: their combined request rate stays within SEGMENT_RATE_LIMIT_RPS', async ({
    annotate,
  }) => {
    const rps = 10
    const env = { SEGMENT_RATE_LIMIT_RPS: String(rps), DELIVERY_MAX_BATCH_ITEMS: '10' }
    const replicas = await Promise.all([pipeline.startSegment(env), pipeline.startSegment(env)])
    const p = prefix()
    const total = 1200
    const look = identifyLook({ prefix: p, rows: total })
    await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 8003 })

    await waitForAccepted(pipeline.simulator, p, total, 180_000)
    expectZeroLostZeroDuplicated(p, total)

    // Both replicas delivered part of the send (the group gave each some partitions).
    const delivered = await Promise.all(replicas.map((r) => metricSum(r, 'lookstream_destination_delivered_total')))
    expect(
      delivered.every((n) => n > 0),
      `delivered per replica: ${delivered.join(', ')}`,
    ).toBe(true)
    expect(delivered.reduce((a, b) => a + b, 0)).toBe(total)

    const times = pipeline.simulator.state.requests
      .toArray()
      .map((r) => r.receivedAt)
      .sort((a, b) => a - b)
    expect(times.length).toBeGreaterThanOrEqual(total / 10)
    // GCRA with a burst of 1: any window of w seconds admits at most rps·w + 1 requests. Two more are allowed
    // for arrival jitter between the limiter (Redis time) and the simulator: requests admitted 100 ms apart can
    // reach it closer together on a busy machine (22 in 2 s has been seen at 10/s).
    const windowMs = 5000
    let most = 0
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! >= windowMs) j++
      most = Math.max(most, i - j + 1)
    }
    expect(most, `most requests in any ${windowMs} ms`).toBeLessThanOrEqual((rps * windowMs) / 1000 + 3)
    const overall = ((times.length - 1) * 1000) / (times.at(-1)! - times[0]!)
    await annotate(
      `delivered per replica ${delivered.join('/')}; ${times.length} requests; most in ${windowMs} ms: ${most}; overall ${overall.toFixed(2)} req/s`,
    )
    expect(overall, 'requests per second over the send').toBeLessThanOrEqual(rps * 1.05)
  }, 240_000)
})
