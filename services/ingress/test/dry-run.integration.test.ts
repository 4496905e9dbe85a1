import { startDeliveryStack, serviceEnv, readTopic, type DeliveryStack } from '@lookstream/delivery-testing'
import { runDestination, sendRecordKey, type RunningDestination } from '@lookstream/destination'
import { dlqTopic, HEADERS, TOPICS } from '@lookstream/events'
import { segment } from '@lookstream/segment'
import { startSegmentSimulator, type Simulator } from '@lookstream/simulators'
import { waitFor } from '@lookstream/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordedFailures } from './support/dry-run.ts'
import { createTopics, post, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'

// A dry run goes through the real send path and the destination's own checks but produces nothing; the real
// send of the same Look then reports the same counts and reasons, at the ingress and at the destination.

const HISTORY_SECRET = 'dry-run-test-history-secret'
const ROWS = 100_000
const WRITE_KEY = 'dry-run-test-write-key'

function bigLook(): { text: string; rejected: number[]; refused: number[] } {
  const rejected: number[] = []
  const refused: number[] = []
  const rows: string[] = []
  const wide = 'w'.repeat(20_000)
  for (let row = 1; row <= ROWS; row++) {
    if (row % 997 === 0) {
      rejected.push(row)
      rows.push(`{"u.id":{"value":null},"u.email":{"value":null},"u.plan":{"value":"x"},"u.note":{"value":null}}`)
    } else if (row % 1009 === 0) {
      // 40 KB of traits: under the canonical 64 KB limit, over Segment's 32 KB per event.
      refused.push(row)
      rows.push(
        `{"u.id":{"value":"u-${row}"},"u.email":{"value":"${row}@example.com"},"u.plan":{"value":"${wide}"},"u.note":{"value":"${wide}"}}`,
      )
    } else {
      rows.push(
        `{"u.id":{"value":"u-${row}"},"u.email":{"value":"${row}@example.com"},"u.plan":{"value":"plan-${row % 7}"},"u.note":{"value":${row}}}`,
      )
    }
  }
  const fields = {
    dimensions: [
      { name: 'u.id', tags: ['user_id'] },
      { name: 'u.email', tags: ['email'] },
      { name: 'u.plan', tags: [] },
      { name: 'u.note', tags: [] },
    ],
  }
  const text = `{"ran_at":"2026-11-20T06:00:00+00:00","fields":${JSON.stringify(fields)},"data":[${rows.join(',')}]}`
  return { text, rejected, refused }
}

interface LookerAnswer {
  success: boolean
  message: string
  send_id: string
  rows: { received: number; accepted: number; rejected: number }
  rejected_rows: { row: number; reason: string }[]
  dry_run?: {
    messages: number
    refused_rows: number
    checks: string[]
    problems: { row: number; reason: string; code: string }[]
    sample_payloads: string[]
  }
}

let stack: DeliveryStack<Simulator>
let stub: LookerStub
let ingress: Ingress
let service: RunningDestination
const look = bigLook()

async function endOffsets(): Promise<Record<string, string>> {
  const admin = stack.client.admin()
  await admin.connect()
  try {
    const result: Record<string, string> = {}
    for (const topic of [TOPICS.identify, TOPICS.track, TOPICS.group, TOPICS.sends, dlqTopic('segment')]) {
      const offsets = await admin.fetchTopicOffsets(topic).catch(() => [])
      result[topic] = offsets.map((o) => `${o.partition}:${o.high}`).join(',')
    }
    return result
  } finally {
    await admin.disconnect()
  }
}

async function execute(run: 'send' | 'dry_run', path: string): Promise<LookerAnswer> {
  const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
    type: 'query',
    scheduled_plan: {
      scheduled_plan_id: 5150,
      url: 'https://looker.example.com/looks/9',
      download_url: stub.route(path, { kind: 'body', body: look.text }),
    },
    form_params: { lookstream_run: run },
  })
  expect(answer.status).toBe(200)
  return answer.json.looker as unknown as LookerAnswer
}

beforeAll(async () => {
  stack = await startDeliveryStack({
    simulator: () => startSegmentSimulator({ writeKeys: [WRITE_KEY], rateLimit: null, maxItems: 2 * ROWS }),
  })
  await createTopics(stack.kafka.brokers)
  stub = await startLookerStub()
  ingress = await startIngress({
    brokers: stack.kafka.brokers,
    redisUrl: stack.redis.url,
    lookerHosts: stub.origin,
    env: {
      SEND_HISTORY_SECRET: HISTORY_SECRET,
      VIEWER_TOKEN: 'viewer-token-dry-run-test-0123456789abcdef',
    },
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

describe('dry run of a 100,000-row Look', () => {
  let dry: LookerAnswer

  it('produces nothing on Kafka and answers counts, the first problems and sample payloads', async () => {
    const before = await endOffsets()
    dry = await execute('dry_run', '/dry-run-look')
    expect(await endOffsets()).toEqual(before)

    expect(dry.rows).toEqual({ received: ROWS, accepted: ROWS - look.rejected.length, rejected: look.rejected.length })
    expect(dry.success).toBe(false)
    expect(dry.dry_run!.refused_rows).toBe(look.refused.length)
    expect(dry.dry_run!.checks).toEqual([
      'canonical message schema (decodeMessage)',
      "Segment's rules (services/segment)",
    ])
    expect(dry.dry_run!.problems.map((p) => p.row)).toEqual(look.refused.slice(0, 20))
    expect(dry.dry_run!.problems[0]).toMatchObject({ code: 'LS_DEST_ITEM_TOO_LARGE' })
    expect(dry.rejected_rows.map((r) => r.row)).toEqual(look.rejected.slice(0, 20))
    expect(dry.message).toMatch(
      new RegExp(
        `^Dry run for Segment Identify \\(connection default\\), nothing was sent\\. ${ROWS} rows read: ${ROWS - look.rejected.length} would be accepted, ${look.rejected.length} rejected by lookstream; Segment Identify would refuse ${look.refused.length} of the accepted rows`,
      ),
    )
    expect(dry.message).toContain(
      `Send id ${dry.send_id}. Rows and reasons: ${ingress.url}/history/sends/${dry.send_id} `,
    )
    expect(dry.dry_run!.sample_payloads).toHaveLength(3)
    const record = await ingress.redis.hgetall(sendRecordKey(dry.send_id))
    expect(record).toMatchObject({ mode: 'dry_run', received: String(ROWS) })
    // The first sample payload is in Looker's answer, never in the send record (row values: kept sealed only).
    expect(dry.message).toContain(`Sample payload: ${dry.dry_run!.sample_payloads[0]}`)
    expect(record.message).not.toContain('Sample payload')
    expect(record.message).not.toContain(dry.dry_run!.sample_payloads[0])
  }, 120_000)

  it('a real send of the same Look then reports the same counts and reasons, and delivers the sampled payload', async () => {
    const real = await execute('send', '/real-look')
    expect(real.rows).toEqual(dry.rows)
    expect(real.rejected_rows).toEqual(dry.rejected_rows)
    expect(real.dry_run).toBeUndefined()

    const counts = await waitFor(
      async () => {
        const record = await ingress.redis.hgetall(sendRecordKey(real.send_id))
        const delivered = Number(record.delivered ?? 0)
        const deadLettered = Number(record.dead_lettered ?? 0)
        return delivered + deadLettered === real.rows.accepted && { delivered, deadLettered }
      },
      { timeoutMs: 90_000, intervalMs: 200, message: 'every accepted row delivered or dead-lettered' },
    )
    expect(counts.deadLettered).toBe(dry.dry_run!.refused_rows)

    const dead = await readTopic(
      stack,
      dlqTopic('segment'),
      look.refused.length,
      (r) => r.headers[HEADERS.sendId] === real.send_id,
    )
    const deadRows = dead
      .map((r) => ({
        row: (JSON.parse(r.value!.toString()) as { context: { lookstream: { row: number } } }).context.lookstream.row,
        reason: r.headers[HEADERS.error],
      }))
      .sort((a, b) => a.row - b.row)
    expect(deadRows.slice(0, 20)).toEqual(dry.dry_run!.problems.map((p) => ({ row: p.row, reason: p.reason })))

    // The send history (the page) holds the same failed rows with the same reasons for the dry run and the real
    // send: every rejection at the ingress and every row the service refused, not only the first problems.
    const expected = await recordedFailures(ingress, HISTORY_SECRET, dry.send_id)
    expect(expected).toHaveLength(look.rejected.length + look.refused.length)
    const recorded = await waitFor(
      async () => {
        const failures = await recordedFailures(ingress, HISTORY_SECRET, real.send_id)
        return failures.length === expected.length && failures
      },
      { timeoutMs: 30_000, message: "the real send's failed rows in the send history" },
    )
    expect(recorded).toEqual(expected)

    const sample = JSON.parse(dry.dry_run!.sample_payloads[0]!) as { messageId: string }
    const delivered = stack.simulator.state.accepted.toArray().find((a) => a.id === sample.messageId)
    expect(delivered?.item).toEqual(sample)
  }, 180_000)
})
