import { HEADERS, sendRecordKey, TOPICS } from '@lookstream/events'
import { deriveHistoryKey, recordRowFailures } from '@lookstream/send-history'
import { randomInt } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { metaKey } from '../src/history/changed-rows.ts'
import { createTopics, post, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'
import { readTopic } from './support/read-topic.ts'

// "Changed rows only" on a daily schedule, run four times against the real ingress, Kafka and Redis: the first
// run sends everything, then only new, changed and previously failed rows go out, and "all rows" sends all.

const HISTORY_SECRET = 'changed-rows-test-history-secret'
const USERS = 2000
const brokers = inject('kafkaBrokers')
let stub: LookerStub
let ingress: Ingress
const planId = randomInt(1_000_000, 9_000_000)

type Row = { id: string | null; plan: string; score: number }

function lookText(rows: Row[]): string {
  const fields = {
    dimensions: [
      { name: 'u.id', tags: ['user_id'] },
      { name: 'u.plan', tags: [] },
    ],
    measures: [{ name: 'u.score', tags: [] }],
  }
  const data = rows.map((r) => ({
    'u.id': { value: r.id },
    'u.plan': { value: r.plan },
    'u.score': { value: r.score },
  }))
  return JSON.stringify({ ran_at: new Date().toISOString(), fields, data })
}

interface Answer {
  success: boolean
  message: string
  send_id: string
  rows: {
    received: number
    accepted: number
    rejected: number
    skipped_unchanged?: number
    resent_after_failure?: number
  }
}

let runs = 0
async function run(
  rows: Row[],
  mode: 'changed' | 'all_remember' | 'all',
  plan: number | null = planId,
): Promise<Answer> {
  const path = `/changed-rows/${planId}/${++runs}`
  const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
    type: 'query',
    scheduled_plan: {
      ...(plan === null ? {} : { scheduled_plan_id: plan }),
      url: 'https://looker.example.com/looks/7',
      download_url: stub.route(path, { kind: 'body', body: lookText(rows) }),
    },
    form_params: { lookstream_rows: mode },
  })
  expect(answer.status).toBe(200)
  return answer.json.looker as unknown as Answer
}

async function sentUserIds(sendId: string): Promise<string[]> {
  const records = (await readTopic(brokers, TOPICS.identify)).filter((r) => r.headers[HEADERS.sendId] === sendId)
  return records.map((r) => (JSON.parse(r.value) as { userId: string }).userId).sort()
}

const baseRows: Row[] = [
  ...Array.from({ length: USERS }, (_, i) => ({ id: `u-${i + 1}`, plan: 'monthly', score: i + 1 })),
  // Rejected every time (no identity): never remembered, so tried again on every run.
  { id: null, plan: 'none', score: 0 },
]
// Day 2: 1 % of the users changed, and one new user.
const changedIds = Array.from({ length: USERS / 100 }, (_, i) => `u-${(i + 1) * 100}`)
const day2: Row[] = [
  ...baseRows.map((r) => (r.id !== null && changedIds.includes(r.id) ? { ...r, plan: 'annual' } : r)),
  { id: 'u-new', plan: 'trial', score: 1 },
]

beforeAll(async () => {
  stub = await startLookerStub()
  await createTopics(brokers)
  ingress = await startIngress({
    brokers,
    redisUrl: inject('redisUrl'),
    lookerHosts: stub.origin,
    env: { SEND_HISTORY_SECRET: HISTORY_SECRET },
  })
}, 120_000)

afterAll(async () => {
  await ingress?.close()
  await stub?.close()
})

describe('changed rows only, on a daily schedule', () => {
  let day2SendId: string

  it('day 1 sends every row and remembers the accepted ones (16 bytes each)', async () => {
    const answer = await run(baseRows, 'changed')
    expect(answer.rows).toEqual({
      received: USERS + 1,
      accepted: USERS,
      rejected: 1,
      skipped_unchanged: 0,
      resent_after_failure: 0,
    })
    expect(answer.message).toContain('Every row was sent: this is the first run remembered for this schedule.')
    expect((await sentUserIds(answer.send_id)).length).toBe(USERS)
    const meta = await ingress.redis.hgetall(
      metaKey({ action: 'segment_identify', connection: 'default', planId: String(planId) }),
    )
    expect(meta).toMatchObject({ gen: '1', chunks: '1', rows: String(USERS), send_id: answer.send_id })
    const chunk = await ingress.redis.getBuffer(`lookstream:changed:{segment_identify|default|${planId}}:g1:0`)
    expect(chunk?.length).toBe(USERS * 16)
  })

  it('day 2 sends exactly the changed and new rows (and the rejected one again)', async () => {
    const answer = await run(day2, 'changed')
    day2SendId = answer.send_id
    expect(answer.rows).toEqual({
      received: USERS + 2,
      accepted: changedIds.length + 1,
      rejected: 1,
      skipped_unchanged: USERS - changedIds.length,
      resent_after_failure: 0,
    })
    expect(await sentUserIds(answer.send_id)).toEqual([...changedIds, 'u-new'].sort())
    expect(answer.message).toContain(`${USERS - changedIds.length} unchanged rows skipped`)
    const record = await ingress.redis.hgetall(sendRecordKey(answer.send_id))
    expect(record.skipped_unchanged).toBe(String(USERS - changedIds.length))
  })

  it('day 3, nothing changed: sends exactly the row that failed at the destination on day 2', async () => {
    // What the delivery runtime records when Segment dead-letters u-300 of the day-2 send.
    await recordRowFailures(
      ingress.redis,
      day2SendId,
      [
        {
          destination: 'segment',
          row: 300,
          stage: 'dead-lettered',
          code: 'http_400',
          reason: 'HTTP 400',
          identity: { userId: 'u-300' },
          at: new Date(),
        },
      ],
      { key: deriveHistoryKey(HISTORY_SECRET) },
    )
    const answer = await run(day2, 'changed')
    expect(answer.rows).toEqual({
      received: USERS + 2,
      accepted: 1,
      rejected: 1,
      skipped_unchanged: USERS,
      resent_after_failure: 1,
    })
    expect(await sentUserIds(answer.send_id)).toEqual(['u-300'])
    expect(answer.message).toContain('1 unchanged rows were sent again because they failed last time')

    // Day 4: the failure is behind; nothing goes out.
    const day4 = await run(day2, 'changed')
    expect(day4.rows).toMatchObject({ accepted: 0, rejected: 1, skipped_unchanged: USERS + 1 })
    expect(await sentUserIds(day4.send_id)).toEqual([])
  })

  it('"all rows, and remember" sends every row again; plain "all rows" neither skips nor remembers', async () => {
    const all = await run(day2, 'all_remember')
    expect(all.rows).toMatchObject({ accepted: USERS + 1, skipped_unchanged: 0 })
    expect(all.message).toContain('Every row was sent: all rows were asked for.')
    const plain = await run(day2, 'all')
    expect(plain.rows).toEqual({ received: USERS + 2, accepted: USERS + 1, rejected: 1 })
    const meta = await ingress.redis.hgetall(
      metaKey({ action: 'segment_identify', connection: 'default', planId: String(planId) }),
    )
    expect(meta.send_id).toBe(all.send_id)
  })

  it('refuses changed rows only for a send without a scheduled plan, sending nothing', async () => {
    const answer = await run(baseRows, 'changed', null)
    expect(answer.success).toBe(false)
    expect(answer.rows).toEqual({ received: 0, accepted: 0, rejected: 0 })
    expect(answer.message).toContain('Only new or changed rows compares a schedule with its last run')
  })
})
