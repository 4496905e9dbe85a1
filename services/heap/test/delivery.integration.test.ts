import { HEADERS, messageIdOf, newRunId, produceMessages, readTopic } from '@lookstream/delivery-testing'
import { runDestination, sendRecordKey, type RunningDestination } from '@lookstream/destination'
import { liveDestinations } from '@lookstream/events'
import { waitFor } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { heap } from '../src/heap.ts'
import {
  accountMessage,
  APP_ID,
  heapEnv,
  OTHER_APP_ID,
  startHeapStack,
  updatesOf,
  userMessage,
  type HeapStack,
} from './heap-stack.ts'

let stack: HeapStack
let redis: Redis
let running: RunningDestination | undefined

beforeAll(async () => {
  stack = await startHeapStack()
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
  running = await runDestination(heap, { env: heapEnv(stack, extra) })
  return running
}

async function metricValue(service: RunningDestination, name: string, labels: Record<string, string> = {}) {
  const metric = await service.service.registry.getSingleMetric(name)?.get()
  return (metric?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0)
}

function requestsTo(path: string): number {
  return stack.simulator.state.requests.toArray().filter((r) => r.path === path && r.status === 200).length
}

describe('heap service: Kafka → runtime → Heap simulator', () => {
  it('updates every user and account once, at the right endpoint and environment, named by column; a replay sends nothing', async () => {
    const run = newRunId()
    const users = Array.from({ length: 1500 }, (_, i) => userMessage(run, i))
    const accounts = Array.from({ length: 300 }, (_, i) => accountMessage(run, i))
    const service = await start()
    await redis.hset(sendRecordKey(`send-${run}`), { send_id: `send-${run}`, accepted: '1800' })
    await produceMessages(stack, [...users, ...accounts], { sendId: `send-${run}` })
    await waitFor(() => updatesOf(stack, 'user', run).size === 1500 && updatesOf(stack, 'account', run).size === 300, {
      timeoutMs: 30_000,
      message: '1,500 users and 300 accounts updated',
    })

    expect([...updatesOf(stack, 'user', run).values()].every((n) => n === 1)).toBe(true)
    expect([...updatesOf(stack, 'account', run).values()].every((n) => n === 1)).toBe(true)
    expect(stack.simulator.users.get(`${APP_ID}:${run}-user-7@example.com`)).toEqual({
      'Users Plan': 'monthly',
      'Users Index': 7,
    })
    expect(stack.simulator.accounts.get(`${APP_ID}:${run}-account-9`)).toEqual({
      'Accounts Tier': 'gold',
      'Accounts Seats': 9,
    })
    // Bulk requests only, at most 1,000 items each: 2 for the users, 1 for the accounts.
    const log = stack.simulator.state.requests.toArray()
    expect(log.every((r) => r.items <= 1000)).toBe(true)
    expect(requestsTo('/api/add_user_properties')).toBeGreaterThanOrEqual(2)
    expect(requestsTo('/api/add_account_properties')).toBeGreaterThanOrEqual(1)
    expect(
      log.filter((r) => r.path !== '/api/add_user_properties' && r.path !== '/api/add_account_properties'),
    ).toEqual([])
    await waitFor(async () => (await redis.hget(sendRecordKey(`send-${run}`), 'delivered')) === '1800', {
      message: 'the send record counts 1,800 delivered',
    })

    await produceMessages(stack, [...users, ...accounts], { sendId: `send-${run}` })
    await waitFor(async () => (await metricValue(service, 'lookstream_destination_duplicates_skipped_total')) >= 1800, {
      timeoutMs: 30_000,
      message: 'the replayed messages were skipped',
    })
    expect(stack.simulator.state.counters.itemsReceived).toBe(1800)
  })

  it('announces each connection’s environments in the destination registry, for the ingress to check sends', async () => {
    await start()
    const live = await liveDestinations(redis)
    expect(live.get('heap')?.settings).toEqual({
      default: { environment: APP_ID, environments: [APP_ID, OTHER_APP_ID] },
    })
  })

  it('sends to the environment a send names when the connection allows it, and dead-letters one it does not allow', async () => {
    const run = newRunId()
    await start()
    await produceMessages(stack, [
      userMessage(run, 1, {}, { envId: OTHER_APP_ID }),
      userMessage(run, 2, {}, { envId: '999' }),
    ])
    await waitFor(() => updatesOf(stack, 'user', run, OTHER_APP_ID).size === 1, {
      message: 'other environment updated',
    })
    const dead = await readTopic(stack, 'lookstream.dlq.heap', 1, (r) => messageIdOf(r) === `${run}-2`)
    expect(dead[0]!.headers[HEADERS.error]).toBe(
      `Heap environment 999 is not allowed on connection "default" (allowed: ${APP_ID}, ${OTHER_APP_ID})`,
    )
    expect(updatesOf(stack, 'user', run).size).toBe(0)
  })

  it('flattens nested traits, lower-cases email, truncates on request and dead-letters rows Heap would refuse', async () => {
    const run = newRunId()
    await start()
    await produceMessages(stack, [
      userMessage(run, 1, { Address: { City: 'Paris' }, EMAIL: 'Ann@Example.com', Paid: true }),
      userMessage(run, 2, { Notes: 'n'.repeat(1500) }, { longValues: 'truncate' }),
      userMessage(run, 3, { Notes: 'n'.repeat(1500) }),
      userMessage(run, 4, { Id: 'x' }),
    ])
    await waitFor(() => updatesOf(stack, 'user', run).size === 2, { message: 'two users updated' })
    expect(stack.simulator.users.get(`${APP_ID}:${run}-user-1@example.com`)).toEqual({
      'Users Plan': 'monthly',
      'Users Index': 1,
      'Address.City': 'Paris',
      email: 'Ann@Example.com',
      Paid: 'true',
    })
    expect(stack.simulator.users.get(`${APP_ID}:${run}-user-2@example.com`)?.Notes).toBe('n'.repeat(1023))
    const dead = await readTopic(stack, 'lookstream.dlq.heap', 2, (r) => messageIdOf(r)?.startsWith(run) ?? false)
    const reasons = new Map(dead.map((r) => [messageIdOf(r), r.headers[HEADERS.error]]))
    expect(reasons.get(`${run}-3`)).toBe(
      'property "Notes" is 1500 characters; Heap takes fewer than 1024 (or send with long values truncated)',
    )
    expect(reasons.get(`${run}-4`)).toBe('property "Id" is reserved by Heap (no user property may be named id)')
    expect(stack.simulator.state.counters.rejected).toBe(0)
  })

  it('splits a batch Heap rejects with 400 so only the bad rows reach the DLQ with Heap’s reason', async () => {
    const run = newRunId()
    const bad = new Set([5, 17, 33])
    stack.simulator.faults.configure({
      rules: [
        {
          type: 'status',
          status: 400,
          bodyContains: 'POISON',
          body: { error: 'property "Users Note" is not valid' },
        },
      ],
    })
    await start()
    await produceMessages(
      stack,
      Array.from({ length: 40 }, (_, i) => userMessage(run, i, { 'Users Note': bad.has(i) ? 'POISON' : 'fine' })),
    )
    await waitFor(() => updatesOf(stack, 'user', run).size === 37, { timeoutMs: 30_000, message: '37 updated' })
    const dead = await readTopic(stack, 'lookstream.dlq.heap', 3, (r) => messageIdOf(r)?.startsWith(run) ?? false)
    expect(dead.map(messageIdOf).sort()).toEqual([...bad].map((i) => `${run}-${i}`).sort())
    for (const record of dead) {
      // Heap's words, with the row's own values (here POISON) blanked.
      expect(record.headers[HEADERS.error]).toBe('HTTP 400: {"error":"property \\"Users Note\\" is not valid"}')
      expect(record.headers[HEADERS.errorClass]).toBe('permanent')
      expect(record.headers['lookstream-error-code']).toBe('LS_DEST_REJECTED')
    }
    for (const i of bad) expect(stack.simulator.users.has(`${APP_ID}:${run}-user-${i}@example.com`)).toBe(false)
  })

  it('retries 429, 500 and timeouts to success, lowering the shared rate on the 429; each user updated once', async () => {
    const run = newRunId()
    stack.simulator.faults.configure({
      script: [
        { type: 'status', status: 429, count: 1 },
        { type: 'status', status: 500, count: 2 },
        { type: 'hang', count: 1 },
      ],
    })
    await start({ DELIVERY_QUICK_ATTEMPTS: '6', DELIVERY_MAX_BATCH_ITEMS: '10' })
    await produceMessages(
      stack,
      Array.from({ length: 50 }, (_, i) => userMessage(run, i)),
    )
    await waitFor(() => updatesOf(stack, 'user', run).size === 50, { timeoutMs: 30_000, message: '50 updated' })
    const statuses = stack.simulator.state.requests.toArray().map((r) => r.status)
    expect(statuses).toEqual(expect.arrayContaining([429, 500, 0]))
    expect([...updatesOf(stack, 'user', run).values()].every((n) => n === 1)).toBe(true)
    // The 429 lowered the environment's shared item rate below its configured ceiling.
    const state = await redis.hget(`lookstream:ratelimit:{heap:app-${APP_ID}}:items`, 'rate')
    expect(Number(state)).toBeLessThan((6_000_000 / 60) * 0.98)
  })
})
