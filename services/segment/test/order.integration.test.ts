import { orderMarksKey, runDestination, type RunningDestination } from '@lookstream/destination'
import { newRunId, produceMessages } from '@lookstream/delivery-testing'
import { waitFor } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { segment } from '../src/segment.ts'
import { identify, segmentEnv, startSegmentStack, type SegmentStack } from './segment-stack.ts'

// Segment's items are events, which Segment orders by their own timestamps: it does not keep per-user order
// (docs/adr/0022-per-user-order.md), and a parked message does not hold back the user's later ones.

let stack: SegmentStack
let redis: Redis
let running: RunningDestination | undefined

beforeAll(async () => {
  stack = await startSegmentStack()
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

async function metricValues(service: RunningDestination, name: string) {
  return (await service.service.registry.getSingleMetric(name)?.get())?.values ?? []
}

describe('segment service: no per-user order', { timeout: 60_000 }, () => {
  it("a user's parked message does not hold back the user's later one, and no order state is kept", async () => {
    expect(segment.orderedPerUser).toBeUndefined()
    const run = newRunId()
    const first = { ...identify(run, 5, { tier: `first-${run}` }), messageId: `${run}-first` }
    const second = { ...identify(run, 5, { tier: `second-${run}` }), messageId: `${run}-second` }
    stack.simulator.faults.addRule({ type: 'status', status: 500, bodyContains: `first-${run}`, count: 2 })
    const service = await start({ DELIVERY_QUICK_ATTEMPTS: '1' })
    await produceMessages(stack, [first])
    await waitFor(
      async () =>
        (await metricValues(service, 'lookstream_destination_retries_total')).some(
          (v) => v.labels.stage === 'topic' && v.value >= 1,
        ),
      { timeoutMs: 20_000, message: 'the first message parked' },
    )
    await produceMessages(stack, [second])
    await waitFor(() => stack.simulator.state.acceptedIds.has(`${run}-first`), {
      timeoutMs: 30_000,
      message: 'the first message delivered from the retry topic',
    })

    const ids = [...stack.simulator.state.acceptedIds.keys()].filter((id) => id.startsWith(run))
    expect(ids).toEqual([`${run}-second`, `${run}-first`])
    expect(await redis.exists(orderMarksKey('segment'))).toBe(0)
    expect(await metricValues(service, 'lookstream_destination_order_held_total')).toEqual([])
    expect(await metricValues(service, 'lookstream_destination_order_parked_users')).toEqual([])
  })
})

async function start(extra: Record<string, string> = {}): Promise<RunningDestination> {
  running = await runDestination(segment, { env: segmentEnv(stack, extra) })
  return running
}
