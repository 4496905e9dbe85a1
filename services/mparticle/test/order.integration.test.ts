import { runDestination, type RunningDestination } from '@lookstream/destination'
import { newRunId, produceMessages } from '@lookstream/delivery-testing'
import { waitFor } from '@lookstream/testing'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mparticle } from '../src/mparticle.ts'
import { mparticleEnv, profile, startMparticleStack, type MparticleStack } from './mparticle-stack.ts'

// Per-user order (docs/adr/0022-per-user-order.md) through the real service: Kafka → runtime → mParticle simulator.

let stack: MparticleStack
let running: RunningDestination | undefined

beforeAll(async () => {
  stack = await startMparticleStack()
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

describe('mparticle service: per-user order under retries', { timeout: 60_000 }, () => {
  it("a user's first profile update fails and is parked: later ones wait behind it, the newest is applied last", async () => {
    const run = newRunId()
    const tiers = [`first-${run}`, `second-${run}`, `third-${run}`]
    const update = (n: number) => ({
      ...profile(run, 7, { 'looker_users.tier': tiers[n] }),
      messageId: `${run}-7-${n}`,
    })
    stack.simulator.faults.addRule({ type: 'status', status: 503, bodyContains: tiers[0], count: 3 })
    const service = await runDestination(mparticle, { env: mparticleEnv(stack, { DELIVERY_QUICK_ATTEMPTS: '2' }) })
    running = service
    await produceMessages(stack, [update(0)])
    await waitFor(
      async () => (await metricValue(service, 'lookstream_destination_retries_total', { stage: 'topic' })) === 1,
      { timeoutMs: 20_000, message: 'the first update parked' },
    )
    await produceMessages(stack, [update(1)])
    await produceMessages(stack, [update(2)])
    await waitFor(() => acceptedValues(tiers).length === 3, { timeoutMs: 30_000, message: 'three updates accepted' })

    expect(acceptedValues(tiers)).toEqual(tiers)
    expect(await metricValue(service, 'lookstream_destination_order_held_total')).toBeGreaterThanOrEqual(2)
  })
})
