import { runDestination, type RunningDestination } from '@lookstream/destination'
import { spawnService, startRedis, waitFor, type SpawnedService } from '@lookstream/testing'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { segment } from '../src/segment.ts'
import { newRunId, produceMessages } from '@lookstream/delivery-testing'
import { identify, segmentEnv, startSegmentStack, type SegmentStack } from './segment-stack.ts'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

let stack: SegmentStack
const running: RunningDestination[] = []
const spawned: SpawnedService[] = []

beforeAll(async () => {
  stack = await startSegmentStack()
}, 60_000)

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()))
  // SIGTERM, not SIGKILL: the tests share the topic and the consumer group, and a service killed right after
  // its last batch was accepted leaves that batch uncommitted, so the next test's service would deliver it
  // again into the freshly reset simulator. SIGTERM finishes in-flight batches and commits (SIGKILL after 15 s).
  await Promise.all(spawned.splice(0).map((s) => s.stop('SIGTERM', 15_000)))
  stack.simulator.reset()
})

afterAll(async () => {
  await stack.stop()
})

function acceptedWith(prefix: string): number {
  let n = 0
  for (const id of stack.simulator.state.acceptedIds.keys()) if (id.startsWith(prefix)) n++
  return n
}

describe('segment service under failures', () => {
  it('Redis stopped for a few seconds mid-send: delivery pauses, readiness says so, then 0 lost and 0 duplicates', async () => {
    const run = newRunId()
    const total = 1500
    const service = await runDestination(segment, {
      env: segmentEnv(stack, { SEGMENT_RATE_LIMIT_RPS: '50', DELIVERY_MAX_BATCH_ITEMS: '15' }),
    })
    running.push(service)
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => identify(run, i)),
    )
    await waitFor(() => acceptedWith(run) >= 300, { timeoutMs: 30_000, message: '300 accepted' })
    const port = stack.redis.port
    await stack.redis.stop()
    await waitFor(async () => (await fetch(`${service.address.url}/readyz`)).status === 503, {
      timeoutMs: 10_000,
      message: 'readiness to report redis down',
    })
    const acceptedWhileDown = acceptedWith(run)
    await new Promise((resolve) => setTimeout(resolve, 3000))
    // At most the requests already past the rate limiter went out; then delivery waited for Redis.
    expect(acceptedWith(run) - acceptedWhileDown).toBeLessThanOrEqual(15 * 4)
    stack.redis = await startRedis({ port })
    await waitFor(() => acceptedWith(run) === total, { timeoutMs: 60_000, message: `${total} accepted` })
    await waitFor(async () => (await fetch(`${service.address.url}/readyz`)).status === 200, {
      message: 'ready again',
    })
    expect(stack.simulator.state.counters.accepted).toBe(total)
    expect(stack.simulator.state.counters.duplicates).toBe(0)
  }, 120_000)

  it('kill -9 of the service mid-send, then a restart: every message accepted exactly once (0 lost)', async () => {
    const run = newRunId()
    const total = 2000
    const env = segmentEnv(stack, {
      SEGMENT_RATE_LIMIT_RPS: '40',
      DELIVERY_MAX_BATCH_ITEMS: '20',
      // spawnService reads the address from Fastify's info-level "Server listening" line.
      LOG_LEVEL: 'info',
    })
    const first = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(first)
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => identify(run, i)),
    )
    await waitFor(() => acceptedWith(run) >= total / 3, { timeoutMs: 30_000, message: 'a third accepted' })
    first.kill('SIGKILL')
    await first.process.exited
    const atKill = acceptedWith(run)
    expect(atKill).toBeLessThan(total)

    const second = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(second)
    await waitFor(() => acceptedWith(run) === total, { timeoutMs: 90_000, message: `${total} accepted` })
    // Every messageId accepted once: the simulator dedupes like Segment, so `accepted` counts distinct ids and a
    // re-sent one would only show under `duplicates` (a request Segment accepted in the instant before the kill).
    expect(stack.simulator.state.counters.accepted).toBe(total)
    expect(stack.simulator.state.counters.duplicates).toBeLessThanOrEqual(20 * 4)
  }, 180_000)

  it('SIGTERM mid-send: in-flight batches finish and offsets are committed, so a restart re-reads nothing delivered', async () => {
    const run = newRunId()
    const total = 1500
    const env = segmentEnv(stack, {
      SEGMENT_RATE_LIMIT_RPS: '40',
      DELIVERY_MAX_BATCH_ITEMS: '20',
      LOG_LEVEL: 'info',
    })
    const first = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(first)
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => identify(run, i)),
    )
    await waitFor(() => acceptedWith(run) >= total / 3, { timeoutMs: 30_000, message: 'a third accepted' })
    const exit = await first.stop('SIGTERM', 15_000)
    expect(exit).toEqual({ code: 0, signal: null })

    const second = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(second)
    await waitFor(() => acceptedWith(run) === total, { timeoutMs: 90_000, message: `${total} accepted` })
    const metrics = await (await fetch(`${second.url}/metrics`)).text()
    const skipped = /^lookstream_destination_duplicates_skipped_total\{[^}]*\} (\d+)/m.exec(metrics)
    expect(skipped === null ? 0 : Number(skipped[1])).toBe(0)
    expect(stack.simulator.state.counters.accepted).toBe(total)
    expect(stack.simulator.state.counters.duplicates).toBe(0)
  }, 180_000)

  it('two replicas share the partitions and one rate limit: combined request rate stays within it', async () => {
    const run = newRunId()
    const rps = 10
    const env = segmentEnv(stack, { SEGMENT_RATE_LIMIT_RPS: String(rps), DELIVERY_MAX_BATCH_ITEMS: '5' })
    const a = await runDestination(segment, { env })
    const b = await runDestination(segment, { env })
    running.push(a, b)
    await waitFor(
      async () => (await fetch(`${a.address.url}/readyz`)).ok && (await fetch(`${b.address.url}/readyz`)).ok,
      { timeoutMs: 30_000, message: 'both replicas assigned partitions' },
    )
    await produceMessages(
      stack,
      Array.from({ length: 300 }, (_, i) => identify(run, i)),
    )
    await waitFor(() => acceptedWith(run) === 300, { timeoutMs: 60_000, message: '300 accepted' })
    const delivered = async (r: RunningDestination) =>
      (
        (await r.service.registry.getSingleMetric('lookstream_destination_delivered_total')?.get())?.values ?? []
      ).reduce((sum, v) => sum + v.value, 0)
    expect(await delivered(a)).toBeGreaterThan(0)
    expect(await delivered(b)).toBeGreaterThan(0)
    const times = stack.simulator.state.requests.toArray().map((r) => r.receivedAt)
    const carrying = new Set(
      stack.simulator.state.accepted
        .toArray()
        .filter((item) => item.id?.startsWith(run))
        .map((item) => item.requestId),
    )
    expect(carrying.size).toBeGreaterThanOrEqual(60)
    let busiest = 0
    for (const start of times) busiest = Math.max(busiest, times.filter((t) => t >= start && t < start + 1000).length)
    // GCRA spaces grants 100 ms apart across both replicas; one extra for a window that starts on a grant.
    expect(busiest).toBeLessThanOrEqual(rps + 1)
  }, 120_000)
})
