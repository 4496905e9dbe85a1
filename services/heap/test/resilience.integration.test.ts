import { newRunId, produceMessages } from '@lookstream/delivery-testing'
import { runDestination, type RunningDestination } from '@lookstream/destination'
import { spawnService, startRedis, waitFor, type SpawnedService } from '@lookstream/testing'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { heap, requestItemsFor } from '../src/heap.ts'
import { APP_ID, heapEnv, startHeapStack, updatesOf, userMessage, type HeapStack } from './heap-stack.ts'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

let stack: HeapStack
const running: RunningDestination[] = []
const spawned: SpawnedService[] = []

beforeAll(async () => {
  stack = await startHeapStack()
}, 60_000)

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()))
  // SIGTERM (not SIGKILL) between tests: the tests share the consumer group, and a batch left uncommitted would be
  // delivered again into the next test's freshly reset simulator.
  await Promise.all(spawned.splice(0).map((s) => s.stop('SIGTERM', 15_000)))
  stack.simulator.reset()
  stack.simulator.rateLimits.appEvents?.setLimit(null)
})

afterAll(async () => {
  await stack.stop()
})

/** Every user of the run holds exactly the properties its row gave it. */
function expectFinalProperties(run: string, total: number): void {
  for (let i = 0; i < total; i++) {
    expect(stack.simulator.users.get(`${APP_ID}:${run}-user-${i}@example.com`)).toEqual({
      'Users Plan': i % 2 === 0 ? 'annual' : 'monthly',
      'Users Index': i,
    })
  }
}

describe('heap service under failures', () => {
  it('Redis stopped for a few seconds mid-send: delivery waits for it, then every user holds its properties', async () => {
    const run = newRunId()
    const total = 1500
    const service = await runDestination(heap, {
      env: heapEnv(stack, { HEAP_ITEMS_PER_MINUTE: '30000', DELIVERY_MAX_BATCH_ITEMS: '25' }),
    })
    running.push(service)
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => userMessage(run, i)),
    )
    await waitFor(() => updatesOf(stack, 'user', run).size >= 300, { timeoutMs: 30_000, message: '300 updated' })
    const port = stack.redis.port
    await stack.redis.stop()
    await waitFor(async () => (await fetch(`${service.address.url}/readyz`)).status === 503, {
      timeoutMs: 10_000,
      message: 'readiness to report redis down',
    })
    const updatedWhileDown = updatesOf(stack, 'user', run).size
    await new Promise((resolve) => setTimeout(resolve, 3000))
    // At most the requests already past the rate limiter went out; then delivery waited for Redis.
    expect(updatesOf(stack, 'user', run).size - updatedWhileDown).toBeLessThanOrEqual(25 * 4)
    stack.redis = await startRedis({ port })
    await waitFor(() => updatesOf(stack, 'user', run).size === total, {
      timeoutMs: 60_000,
      message: `${total} updated`,
    })
    expectFinalProperties(run, total)
    expect([...updatesOf(stack, 'user', run).values()].every((n) => n === 1)).toBe(true)
  }, 120_000)

  it('an idle service reports a Redis outage on its gauge and readiness, and its return', async () => {
    const service = await runDestination(heap, { env: heapEnv(stack) })
    running.push(service)
    const available = async () => {
      const text = await (await fetch(`${service.address.url}/metrics`)).text()
      return /^lookstream_destination_redis_available\{[^}]*\} (\d)$/m.exec(text)?.[1]
    }
    expect(await available()).toBe('1')
    const port = stack.redis.port
    await stack.redis.stop()
    // Nothing is being delivered: the connection and the registry heartbeats tell the gauge.
    await waitFor(async () => (await available()) === '0', { timeoutMs: 10_000, message: 'the gauge at 0' })
    expect((await fetch(`${service.address.url}/readyz`)).status).toBe(503)
    stack.redis = await startRedis({ port })
    await waitFor(async () => (await available()) === '1', { timeoutMs: 15_000, message: 'the gauge back at 1' })
    await waitFor(async () => (await fetch(`${service.address.url}/readyz`)).status === 200, {
      timeoutMs: 15_000,
      message: 'ready again',
    })
  }, 60_000)

  it('kill -9 mid-send, then a restart: every user holds exactly its properties, nothing lost', async () => {
    const run = newRunId()
    const total = 2000
    const env = heapEnv(stack, {
      HEAP_ITEMS_PER_MINUTE: '48000',
      DELIVERY_MAX_BATCH_ITEMS: '20',
      // spawnService reads the address from Fastify's info-level "Server listening" line.
      LOG_LEVEL: 'info',
    })
    const first = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(first)
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => userMessage(run, i)),
    )
    await waitFor(() => updatesOf(stack, 'user', run).size >= total / 3, {
      timeoutMs: 30_000,
      message: 'a third updated',
    })
    first.kill('SIGKILL')
    await first.process.exited
    expect(updatesOf(stack, 'user', run).size).toBeLessThan(total)

    const second = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(second)
    await waitFor(() => updatesOf(stack, 'user', run).size === total, {
      timeoutMs: 90_000,
      message: `${total} updated`,
    })
    expectFinalProperties(run, total)
    // A request Heap accepted in the instant before the kill is sent again (its dedupe mark was not yet written);
    // setting the same properties twice leaves them as they were. At most the in-flight requests repeat.
    const repeated = [...updatesOf(stack, 'user', run).values()].filter((n) => n > 1).length
    expect(repeated).toBeLessThanOrEqual(20 * 4)
  }, 180_000)

  it('paces a send at the configured items per minute with two replicas sharing it: 0 simulator 429s', async () => {
    const run = newRunId()
    // Scaled down from Heap's 15,000 items/min: the simulator allows 1,000 items per 10 s window (6,000/min) and
    // the service is configured under it (a window then holds its paced items, one request and one request of
    // catch-up); bench/heap measures the full-size case.
    stack.simulator.rateLimits.appEvents?.setLimit({ limit: 1000, windowMs: 10_000 })
    const itemsPerMinute = 5400
    const batch = 25
    const env = heapEnv(stack, {
      HEAP_ITEMS_PER_MINUTE: String(itemsPerMinute),
      DELIVERY_MAX_BATCH_ITEMS: String(batch),
    })
    const a = await runDestination(heap, { env })
    const b = await runDestination(heap, { env })
    running.push(a, b)
    await waitFor(
      async () => (await fetch(`${a.address.url}/readyz`)).ok && (await fetch(`${b.address.url}/readyz`)).ok,
      { timeoutMs: 30_000, message: 'both replicas assigned partitions' },
    )
    const total = 1200
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => userMessage(run, i)),
    )
    await waitFor(() => updatesOf(stack, 'user', run).size === total, {
      timeoutMs: 60_000,
      message: `${total} updated`,
    })
    const accepted = stack.simulator.state.requests.toArray().filter((r) => r.status === 200)
    const first = Math.min(...accepted.map((r) => r.receivedAt))
    const last = Math.max(...accepted.map((r) => r.receivedAt))
    // GCRA grants the first request at once, then may run one request's worth ahead (the catch-up allowance), and
    // grants each next one when the items before it are paid for.
    const rate = (itemsPerMinute / 60) * 0.98
    const expected = ((total - batch - requestItemsFor(itemsPerMinute)) / rate) * 1000
    expect(last - first).toBeGreaterThan(expected * 0.9)
    expect(last - first).toBeLessThan(expected * 1.1)
    expect(stack.simulator.state.counters.rateLimited).toBe(0)
    const delivered = async (r: RunningDestination) =>
      (
        (await r.service.registry.getSingleMetric('lookstream_destination_delivered_total')?.get())?.values ?? []
      ).reduce((sum, v) => sum + v.value, 0)
    expect(await delivered(a)).toBeGreaterThan(0)
    expect(await delivered(b)).toBeGreaterThan(0)
  }, 120_000)
})
