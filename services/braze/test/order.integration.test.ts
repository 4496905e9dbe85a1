import { orderMarksKey, runDestination, type RunningDestination } from '@lookstream/destination'
import { newRunId, produceMessages } from '@lookstream/delivery-testing'
import { waitFor } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { braze } from '../src/braze.ts'
import { brazeEnv, identify, profileOf, startBrazeStack, type BrazeStack } from './braze-stack.ts'

// Per-user order (docs/adr/0022-per-user-order.md) through the real service: Kafka → runtime → Braze simulator,
// the marks in a real Redis. Each test uses its own users (the marks and the retry topic outlive a test).

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

/** Update `n` of user `index` setting attribute `tier` (its own messageId, so each is a distinct message). */
function update(run: string, index: number, n: number, tier: string) {
  return { ...identify(run, index, { tier }), messageId: `${run}-${index}-${n}` }
}

/** The tiers Braze accepted for a user, in acceptance order. */
function acceptedTiers(index: number): string[] {
  return stack.simulator.state.accepted
    .toArray()
    .filter((a) => (a.item as { external_id?: string }).external_id === `user-${index}`)
    .map((a) => (a.item as { tier: string }).tier)
}

function acceptedAt(index: number, tier: string): number | undefined {
  return stack.simulator.state.accepted.toArray().find((a) => {
    const item = a.item as { external_id?: string; tier?: string }
    return item.external_id === `user-${index}` && item.tier === tier
  })?.acceptedAt
}

describe('braze service: per-user order under retries', { timeout: 60_000 }, () => {
  it("a user's first update fails and is parked: later updates wait behind it and the profile ends with the newest value", async () => {
    const run = newRunId()
    const user = 101
    // Two requests in process, then parked; the first retry-topic cycle fails twice more: parked again.
    stack.simulator.faults.addRule({ type: 'status', status: 500, bodyContains: `first-${run}`, count: 4 })
    const service = await start({ DELIVERY_QUICK_ATTEMPTS: '2' })
    await produceMessages(stack, [update(run, user, 1, `first-${run}`)])
    await waitFor(
      async () => (await metricValue(service, 'lookstream_destination_retries_total', { stage: 'topic' })) === 1,
      {
        timeoutMs: 20_000,
        message: 'the first update parked',
      },
    )
    // The gauge, sampled while the user waits (it is set once the park is recorded in Redis).
    let parkedUsers = 0
    const sampleParked = async () => {
      parkedUsers = Math.max(parkedUsers, await metricValue(service, 'lookstream_destination_order_parked_users'))
    }

    // Newer values of the same user, and another user who must not wait.
    await produceMessages(stack, [update(run, user, 2, `second-${run}`)])
    await produceMessages(stack, [update(run, user, 3, `third-${run}`), update(run, user + 1, 1, `other-${run}`)])
    await waitFor(
      async () => {
        await sampleParked()
        return acceptedTiers(user).length === 3
      },
      { timeoutMs: 30_000, message: 'the three updates accepted' },
    )

    expect(acceptedTiers(user)).toEqual([`first-${run}`, `second-${run}`, `third-${run}`])
    expect(profileOf(stack, user)?.tier).toBe(`third-${run}`)
    expect(parkedUsers).toBe(1)
    expect(await metricValue(service, 'lookstream_destination_order_held_total')).toBeGreaterThanOrEqual(2)
    // The other user went straight through, long before the parked one came back.
    expect(acceptedAt(user + 1, `other-${run}`)!).toBeLessThan(acceptedAt(user, `first-${run}`)!)
    // Unparked once its last parked message was delivered: no state left in Redis.
    await waitFor(async () => (await metricValue(service, 'lookstream_destination_order_parked_users')) === 0)
    expect(await redis.hlen(orderMarksKey('braze'))).toBe(0)
  })

  it("an update being retried in process is not overtaken by the same user's next update sent meanwhile", async () => {
    const run = newRunId()
    const user = 201
    stack.simulator.faults.addRule({ type: 'status', status: 500, bodyContains: `first-${run}`, count: 1 })
    // A long in-process backoff: without per-user order the second update would be sent during it.
    const service = await start({ DELIVERY_BACKOFF_BASE_MS: '1500', DELIVERY_BACKOFF_MAX_MS: '1500' })
    await produceMessages(stack, [update(run, user, 1, `first-${run}`)])
    await waitFor(() => (stack.simulator.state.counters.requestsByStatus['500'] ?? 0) === 1, {
      message: 'the first update refused once',
    })
    await produceMessages(stack, [update(run, user, 2, `second-${run}`), update(run, user + 1, 1, `other-${run}`)])
    await waitFor(() => acceptedTiers(user).length === 2, { timeoutMs: 20_000, message: 'both updates accepted' })

    expect(acceptedTiers(user)).toEqual([`first-${run}`, `second-${run}`])
    expect(profileOf(stack, user)?.tier).toBe(`second-${run}`)
    // Nothing was parked: the second update waited in process only, and the other user did not wait at all.
    expect(await metricValue(service, 'lookstream_destination_retries_total', { stage: 'topic' })).toBe(0)
    expect(acceptedAt(user + 1, `other-${run}`)!).toBeLessThan(acceptedAt(user, `first-${run}`)!)
  })

  it('the order holds across a restart: a new process finds the parked user in Redis and holds its next update', async () => {
    const run = newRunId()
    const user = 401
    // Parked by the first process (two requests), refused once more by the second: it comes back after the update.
    stack.simulator.faults.addRule({ type: 'status', status: 500, bodyContains: `first-${run}`, count: 3 })
    const first = await start({ DELIVERY_QUICK_ATTEMPTS: '2', DELIVERY_RETRY_DELAY_MS: '3000' })
    await produceMessages(stack, [update(run, user, 1, `first-${run}`)])
    await waitFor(
      async () => (await metricValue(first, 'lookstream_destination_retries_total', { stage: 'topic' })) === 1,
      { timeoutMs: 20_000, message: 'the first update parked' },
    )
    await first.close()
    running = undefined

    const second = await start({ DELIVERY_QUICK_ATTEMPTS: '2' })
    await produceMessages(stack, [update(run, user, 2, `second-${run}`)])
    await waitFor(() => acceptedTiers(user).length === 2, { timeoutMs: 30_000, message: 'both updates accepted' })
    expect(acceptedTiers(user)).toEqual([`first-${run}`, `second-${run}`])
    expect(profileOf(stack, user)?.tier).toBe(`second-${run}`)
    expect(await metricValue(second, 'lookstream_destination_order_held_total')).toBeGreaterThanOrEqual(1)
  })

  it("two replicas: each user's updates arrive in order, whichever replica holds its canonical and retry partitions", async () => {
    const run = newRunId()
    const users = [501, 502, 503, 504, 505, 506]
    for (const user of users) {
      stack.simulator.faults.addRule({ type: 'status', status: 500, bodyContains: `first-${run}-${user}`, count: 3 })
    }
    const env = brazeEnv(stack, { DELIVERY_QUICK_ATTEMPTS: '2' })
    const a = await runDestination(braze, { env })
    const b = await runDestination(braze, { env })
    try {
      await waitFor(
        async () => (await fetch(`${a.address.url}/readyz`)).ok && (await fetch(`${b.address.url}/readyz`)).ok,
        { timeoutMs: 30_000, message: 'both replicas in the group' },
      )
      const parked = async () =>
        (await metricValue(a, 'lookstream_destination_retries_total', { stage: 'topic' })) +
        (await metricValue(b, 'lookstream_destination_retries_total', { stage: 'topic' }))
      await produceMessages(
        stack,
        users.map((user) => update(run, user, 1, `first-${run}-${user}`)),
      )
      await waitFor(async () => (await parked()) >= users.length, {
        timeoutMs: 20_000,
        message: 'every first update parked',
      })
      await produceMessages(
        stack,
        users.map((user) => update(run, user, 2, `second-${run}-${user}`)),
      )
      await produceMessages(
        stack,
        users.map((user) => update(run, user, 3, `third-${run}-${user}`)),
      )
      await waitFor(() => users.every((user) => acceptedTiers(user).length === 3), {
        timeoutMs: 40_000,
        message: 'every update accepted',
      })
      for (const user of users) {
        expect(acceptedTiers(user), `user-${user}`).toEqual([
          `first-${run}-${user}`,
          `second-${run}-${user}`,
          `third-${run}-${user}`,
        ])
        expect(profileOf(stack, user)?.tier).toBe(`third-${run}-${user}`)
      }
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('a user stuck failing holds no other user back, and is released after DELIVERY_ORDER_RELEASE_MS', async () => {
    const run = newRunId()
    const stuck = 301
    const releaseMs = 4000
    stack.simulator.faults.addRule({ type: 'status', status: 500, bodyContains: `stuck-${run}` })
    const service = await start({ DELIVERY_QUICK_ATTEMPTS: '1', DELIVERY_ORDER_RELEASE_MS: String(releaseMs) })
    await produceMessages(stack, [update(run, stuck, 1, `stuck-${run}`)])
    await waitFor(
      async () => (await metricValue(service, 'lookstream_destination_retries_total', { stage: 'topic' })) >= 1,
      {
        timeoutMs: 20_000,
        message: 'the stuck update parked',
      },
    )
    // The first refusal happened before the mark was written: the release is due no earlier than this plus the bound.
    const firstRefusal = stack.simulator.state.requests.toArray().find((r) => r.status === 500)!.receivedAt

    const others = Array.from({ length: 20 }, (_, i) => update(run, 310 + i, 1, `other-${run}`))
    await produceMessages(stack, [update(run, stuck, 2, `later-${run}`), ...others])
    await waitFor(() => others.every((_, i) => acceptedAt(310 + i, `other-${run}`) !== undefined), {
      timeoutMs: 20_000,
      message: 'every other user delivered',
    })
    const othersDone = Math.max(...others.map((_, i) => acceptedAt(310 + i, `other-${run}`)!))
    // The others went through while the stuck user was held, well inside the release bound.
    expect(othersDone).toBeLessThan(firstRefusal + releaseMs)
    expect(acceptedAt(stuck, `later-${run}`)).toBeUndefined()

    await waitFor(() => acceptedAt(stuck, `later-${run}`) !== undefined, {
      timeoutMs: releaseMs + 15_000,
      message: "the stuck user's later update delivered after the release",
    })
    const released = acceptedAt(stuck, `later-${run}`)!
    expect(released).toBeGreaterThanOrEqual(firstRefusal + releaseMs)
    // Delivered within a few retry-topic cycles (DELIVERY_RETRY_MAX_DELAY_MS is 1 s here) of the release.
    expect(released).toBeLessThan(firstRefusal + releaseMs + 8000)
    expect(await metricValue(service, 'lookstream_destination_order_releases_total', { reason: 'time' })).toBe(1)
    // The stuck update itself was never accepted; it keeps cycling in the retry topic, unordered now.
    expect(acceptedAt(stuck, `stuck-${run}`)).toBeUndefined()
    expect(profileOf(stack, stuck)?.tier).toBe(`later-${run}`)
  })
})
