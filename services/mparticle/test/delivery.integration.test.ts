import { newRunId, produceMessages, readTopic } from '@lookstream/delivery-testing'
import { runDestination, type RunningDestination } from '@lookstream/destination'
import { spawnService, startRedis, waitFor, type SpawnedService } from '@lookstream/testing'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type CanonicalMessage, type Context } from '@lookstream/events'
import { mparticle, sourceId } from '../src/mparticle.ts'
import { mparticleEnv, profile, startMparticleStack, type MparticleStack } from './mparticle-stack.ts'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

let stack: MparticleStack
const running: RunningDestination[] = []
const spawned: SpawnedService[] = []

beforeAll(async () => {
  stack = await startMparticleStack()
}, 60_000)

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()))
  await Promise.all(spawned.splice(0).map((s) => s.stop('SIGTERM', 15_000)))
  stack.simulator.reset()
})

afterAll(async () => {
  await stack.stop()
})

/** How many of the run's rows the simulator accepted (by source_request_id: one per row, ever). */
function accepted(run: string, total: number): number {
  let n = 0
  for (let i = 0; i < total; i++) if (stack.simulator.state.acceptedIds.has(sourceId(`${run}-${i}`))) n++
  return n
}

describe('mparticle service', () => {
  it('delivers every row once, rejects the rows mParticle would drop with their reasons, and a replay sends nothing new', async () => {
    const run = newRunId()
    const total = 400
    const bad = new Map<number, Record<string, unknown>>([
      [7, { 'looker_users.bio': 'x'.repeat(5000) }],
      [123, { 'looker_users.nested': { a: 1 } }],
    ])
    const messages = Array.from({ length: total }, (_, i) => profile(run, i, bad.get(i)))
    const { userId: _id, ...anonymous } = profile(run, total)
    const noIdentity: CanonicalMessage = { ...anonymous, anonymousId: 'anon', context: { identities: {} } as Context }
    const service = await runDestination(mparticle, { env: mparticleEnv(stack) })
    running.push(service)
    await produceMessages(stack, [...messages, noIdentity])
    await waitFor(() => accepted(run, total) === total - bad.size, { timeoutMs: 30_000, message: 'rows accepted' })

    const dlq = await readTopic(stack, 'lookstream.dlq.mparticle', 3, (r) =>
      (r.value?.toString() ?? '').includes(`"messageId":"${run}-`),
    )
    const reasons = Object.fromEntries(
      dlq.map((r) => [
        (JSON.parse(r.value!.toString()) as { messageId: string }).messageId,
        `${r.headers['lookstream-error-code']}: ${r.headers['lookstream-error']}`,
      ]),
    )
    expect(reasons).toEqual({
      [`${run}-7`]: `LS_DEST_UNSUPPORTED_VALUE: user attribute "looker_users.bio" is 5000 characters, over mParticle's 4096`,
      [`${run}-123`]:
        'LS_DEST_UNSUPPORTED_VALUE: user attribute "looker_users.nested" holds an object, which mParticle does not take there',
      [`${run}-${total}`]: 'LS_DEST_MISSING_IDENTITY: the row has no mParticle identity (customer_id, email, other, …)',
    })
    const first = stack.simulator.state.accepted.toArray().find((a) => a.id === sourceId(`${run}-0`))
    expect(first?.item).toEqual({
      environment: 'production',
      schema_version: 2,
      source_request_id: sourceId(`${run}-0`),
      user_identities: { customer_id: `cust-${run}-0` },
      user_attributes: { 'looker_users.plan': 'annual', 'looker_users.ltv': 0 },
      events: [],
    })
    const requests = stack.simulator.state.counters.requests
    const skipped = async () => {
      const text = await (await fetch(`${service.address.url}/metrics`)).text()
      const match = /^lookstream_destination_duplicates_skipped_total\{[^}]*\} (\d+)$/m.exec(text)
      return match === null ? 0 : Number(match[1])
    }
    await produceMessages(stack, messages)
    await waitFor(async () => (await skipped()) >= total - bad.size, {
      timeoutMs: 30_000,
      message: 'the replayed rows skipped as already delivered',
    })
    expect(await skipped()).toBe(total - bad.size)
    expect(stack.simulator.state.counters.requests).toBe(requests)
    expect(stack.simulator.state.counters.duplicates).toBe(0)
  }, 90_000)

  it('429 with and without Retry-After, 500s and timeouts: 0 lost, 0 duplicates by source id', async () => {
    const run = newRunId()
    const total = 600
    stack.simulator.faults.configure({
      seed: 7,
      rates: [
        { type: 'status', status: 429, headers: { 'retry-after': '1' }, rate: 0.1 },
        { type: 'status', status: 429, rate: 0.1 },
        { type: 'status', status: 500, rate: 0.1 },
        { type: 'hang', rate: 0.05 },
        { type: 'status', status: 503, rate: 0.05, afterAccept: true },
      ],
    })
    const service = await runDestination(mparticle, {
      env: mparticleEnv(stack, { DELIVERY_MAX_BATCH_ITEMS: '20', DELIVERY_REQUEST_TIMEOUT_MS: '500' }),
    })
    running.push(service)
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => profile(run, i)),
    )
    await waitFor(() => accepted(run, total) === total, { timeoutMs: 90_000, message: `${total} accepted` })
    const statuses = stack.simulator.state.counters.requestsByStatus
    expect(statuses['429']).toBeGreaterThan(0)
    expect(statuses['500']).toBeGreaterThan(0)
  }, 120_000)

  it('kill -9 mid-send, then a restart: every row accepted exactly once', async () => {
    const run = newRunId()
    const total = 1500
    const env = mparticleEnv(stack, {
      MPARTICLE_BATCHES_PER_SECOND: '400',
      DELIVERY_MAX_BATCH_ITEMS: '20',
      LOG_LEVEL: 'info',
    })
    const first = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(first)
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => profile(run, i)),
    )
    await waitFor(() => accepted(run, total) >= total / 3, { timeoutMs: 30_000, message: 'a third accepted' })
    first.kill('SIGKILL')
    await first.process.exited
    expect(accepted(run, total)).toBeLessThan(total)
    const second = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    spawned.push(second)
    await waitFor(() => accepted(run, total) === total, { timeoutMs: 90_000, message: `${total} accepted` })
    // mParticle's source_request_id dedupe (the simulator's too) absorbs the batch a kill may re-send: each of the
    // run's rows is accepted once (acceptedIds holds each source id once; a re-send counts as a duplicate).
    expect(accepted(run, total)).toBe(total)
  }, 180_000)

  it('Redis stopped for a few seconds mid-send: delivery pauses and resumes, 0 lost and 0 duplicates', async () => {
    const run = newRunId()
    const total = 1200
    const service = await runDestination(mparticle, {
      env: mparticleEnv(stack, { MPARTICLE_BATCHES_PER_SECOND: '300', DELIVERY_MAX_BATCH_ITEMS: '15' }),
    })
    running.push(service)
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => profile(run, i)),
    )
    await waitFor(() => accepted(run, total) >= 200, { timeoutMs: 30_000, message: '200 accepted' })
    const port = stack.redis.port
    await stack.redis.stop()
    await waitFor(async () => (await fetch(`${service.address.url}/readyz`)).status === 503, {
      timeoutMs: 10_000,
      message: 'not ready while Redis is down',
    })
    stack.redis = await startRedis({ port })
    await waitFor(() => accepted(run, total) === total, { timeoutMs: 60_000, message: `${total} accepted` })
  }, 120_000)
})
