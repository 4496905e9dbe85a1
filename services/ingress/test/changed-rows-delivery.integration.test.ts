import { readTopic, serviceEnv, startDeliveryStack, type DeliveryStack } from '@lookstream/delivery-testing'
import { runDestination, type RunningDestination } from '@lookstream/destination'
import { HEADERS, TOPICS } from '@lookstream/events'
import { segment } from '@lookstream/segment'
import { readFailureSummary } from '@lookstream/send-history'
import { startSegmentSimulator, type Simulator } from '@lookstream/simulators'
import { waitFor } from '@lookstream/testing'
import { randomInt } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deliveryCounts } from './support/dry-run.ts'
import { createTopics, post, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'

// A daily schedule with "changed rows only", run three times against the real ingress and the real segment service:
// one row fails at the destination every time (Segment refuses an event over 32 KB, so the service dead-letters it
// and records the row in the send history); the second run (1 % of the rows changed) and the third (nothing
// changed) send exactly the changed rows and the row that failed the run before.

const USERS = 1000
const WRITE_KEY = 'changed-rows-delivery-write-key'
const HISTORY_SECRET = 'changed-rows-delivery-history-secret'
const FAILING = 'u-500'
const planId = randomInt(1_000_000, 9_000_000)
// 1 % of the users, not including the failing one.
const changedIds = Array.from({ length: USERS / 100 }, (_, i) => `u-${(i + 1) * 100 - 1}`)

interface Answer {
  success: boolean
  send_id: string
  rows: {
    received: number
    accepted: number
    rejected: number
    skipped_unchanged?: number
    resent_after_failure?: number
  }
}

function lookText(changed: readonly string[]): string {
  const wide = 'w'.repeat(20_000)
  const data = Array.from({ length: USERS }, (_, i) => {
    const id = `u-${i + 1}`
    // 40 KB of traits: within the canonical 64 KB, over Segment's 32 KB per event.
    const [plan, note] = id === FAILING ? [wide, wide] : [changed.includes(id) ? 'annual' : 'monthly', `n-${i}`]
    return { 'u.id': { value: id }, 'u.plan': { value: plan }, 'u.note': { value: note } }
  })
  const fields = {
    dimensions: [
      { name: 'u.id', tags: ['user_id'] },
      { name: 'u.plan', tags: [] },
      { name: 'u.note', tags: [] },
    ],
  }
  return JSON.stringify({ ran_at: new Date().toISOString(), fields, data })
}

let stack: DeliveryStack<Simulator>
let stub: LookerStub
let ingress: Ingress
let service: RunningDestination
let runs = 0

/** One scheduled run: Looker's answer once every accepted row is delivered or dead-lettered and recorded. */
async function run(changed: readonly string[]): Promise<{ answer: Answer; sent: string[] }> {
  const response = await post(`${ingress.url}/actions/segment_identify/execute`, {
    type: 'query',
    scheduled_plan: {
      scheduled_plan_id: planId,
      url: 'https://looker.example.com/looks/8',
      download_url: stub.route(`/changed-delivery/${++runs}`, { kind: 'body', body: lookText(changed) }),
    },
    form_params: { lookstream_rows: 'changed' },
  })
  expect(response.status).toBe(200)
  const answer = response.json.looker as unknown as Answer
  const counts = await deliveryCounts(ingress, answer)
  // The failing row is among every run's rows; the next run reads it from this send's failed rows.
  expect(counts.deadLettered).toBe(1)
  await waitFor(async () => (await readFailureSummary(ingress.redis, answer.send_id)).total === 1, {
    timeoutMs: 30_000,
    message: 'the dead-lettered row recorded in the send history',
  })
  const records = await readTopic(
    stack,
    TOPICS.identify,
    answer.rows.accepted,
    (r) => r.headers[HEADERS.sendId] === answer.send_id,
  )
  const sent = records.map((r) => (JSON.parse(r.value!.toString()) as { userId: string }).userId).sort()
  return { answer, sent }
}

beforeAll(async () => {
  stack = await startDeliveryStack({
    simulator: () => startSegmentSimulator({ writeKeys: [WRITE_KEY], rateLimit: null, maxItems: 4 * USERS }),
  })
  await createTopics(stack.kafka.brokers)
  stub = await startLookerStub()
  ingress = await startIngress({
    brokers: stack.kafka.brokers,
    redisUrl: stack.redis.url,
    lookerHosts: stub.origin,
    registered: false,
    env: { SEND_HISTORY_SECRET: HISTORY_SECRET },
  })
  service = await runDestination(segment, {
    env: serviceEnv(stack, {
      SEGMENT_WRITE_KEY: WRITE_KEY,
      SEGMENT_API_URL: stack.simulator.url,
      SEGMENT_RATE_LIMIT_RPS: '1000',
      SEND_HISTORY_SECRET: HISTORY_SECRET,
    }),
  })
}, 120_000)

afterAll(async () => {
  await service?.close()
  await ingress?.close()
  await stub?.close()
  await stack?.stop()
})

describe('changed rows only, three scheduled runs through the segment service', () => {
  it('run 1 sends every row; Segment refuses the wide one', async () => {
    const { answer, sent } = await run([])
    expect(answer.rows).toEqual({
      received: USERS,
      accepted: USERS,
      rejected: 0,
      skipped_unchanged: 0,
      resent_after_failure: 0,
    })
    expect(sent).toHaveLength(USERS)
  }, 120_000)

  it('run 2, 1 % changed: sends exactly the changed rows and the row that failed in run 1', async () => {
    const { answer, sent } = await run(changedIds)
    expect(answer.rows).toEqual({
      received: USERS,
      accepted: changedIds.length + 1,
      rejected: 0,
      skipped_unchanged: USERS - changedIds.length - 1,
      resent_after_failure: 1,
    })
    expect(sent).toEqual([...changedIds, FAILING].sort())
  }, 120_000)

  it('run 3, nothing changed: sends exactly the row that failed in run 2', async () => {
    const { answer, sent } = await run(changedIds)
    expect(answer.rows).toEqual({
      received: USERS,
      accepted: 1,
      rejected: 0,
      skipped_unchanged: USERS - 1,
      resent_after_failure: 1,
    })
    expect(sent).toEqual([FAILING])
  }, 120_000)
})
