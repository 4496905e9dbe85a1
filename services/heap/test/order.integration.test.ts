import { runDestination, type RunningDestination } from '@lookstream/destination'
import { produceMessages } from '@lookstream/delivery-testing'
import { waitFor } from '@lookstream/testing'
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { heap } from '../src/heap.ts'
import { APP_ID, heapEnv, startHeapStack, userMessage, type HeapStack } from './heap-stack.ts'

// Per-user order (docs/adr/0022-per-user-order.md) through the real service: Kafka → runtime → Heap simulator.

let stack: HeapStack
let running: RunningDestination | undefined

beforeAll(async () => {
  stack = await startHeapStack()
}, 60_000)

afterEach(async () => {
  await running?.close()
  running = undefined
  stack.simulator.reset()
})

afterAll(async () => {
  await stack.stop()
})

async function metricValue(service: RunningDestination, name: string, labels: Record<string, string> = {}) {
  const metric = await service.service.registry.getSingleMetric(name)?.get()
  return (metric?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0)
}

/** Which of these values the simulator accepted, in acceptance order. */
function acceptedValues(values: readonly string[]): string[] {
  return stack.simulator.state.accepted
    .toArray()
    .map((a) => JSON.stringify(a.item))
    .flatMap((json) => values.filter((value) => json.includes(value)))
}

describe('heap service: per-user order under retries', { timeout: 60_000 }, () => {
  it("a user's first property update fails and is parked: later ones wait behind it and Heap ends with the newest value", async () => {
    const run = randomUUID().slice(0, 8)
    const tiers = [`first-${run}`, `second-${run}`, `third-${run}`]
    const update = (n: number) => ({ ...userMessage(run, 7, { Tier: tiers[n] }), messageId: `${run}-7-${n}` })
    stack.simulator.faults.addRule({ type: 'status', status: 500, bodyContains: tiers[0], count: 3 })
    const service = await start({ DELIVERY_QUICK_ATTEMPTS: '2' })
    await produceMessages(stack, [update(0)])
    await waitFor(
      async () => (await metricValue(service, 'lookstream_destination_retries_total', { stage: 'topic' })) === 1,
      { timeoutMs: 20_000, message: 'the first update parked' },
    )
    await produceMessages(stack, [update(1)])
    await produceMessages(stack, [update(2)])
    await waitFor(() => acceptedValues(tiers).length === 3, { timeoutMs: 30_000, message: 'three updates accepted' })

    expect(acceptedValues(tiers)).toEqual(tiers)
    expect(stack.simulator.users.get(`${APP_ID}:${run}-user-7@example.com`)?.Tier).toBe(tiers[2])
    expect(await metricValue(service, 'lookstream_destination_order_held_total')).toBeGreaterThanOrEqual(2)
  })
})

async function start(extra: Record<string, string> = {}): Promise<RunningDestination> {
  running = await runDestination(heap, { env: heapEnv(stack, extra) })
  return running
}
