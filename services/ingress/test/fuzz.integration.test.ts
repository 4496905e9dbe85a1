import { HEADERS, TOPICS, sendRecordKey } from '@lookstream/events'
import fc from 'fast-check'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { createTopics, post, startIngress, type Ingress } from './support/ingress-harness.ts'
import { BROKEN_REASON, CANARY, expectedId, expectedTraits, look, renderLook } from './support/fuzz-looks.ts'
import { readTopic } from './support/read-topic.ts'

// The property-based test through the running ingress: generated Looks pushed as Looker does (base64, so invalid
// UTF-8 survives), checked against what Kafka holds. No row value may reach the Looker answer, the log, the
// Redis send record or a lookstream.sends.v1 event.

const kafka = { brokers: inject('kafkaBrokers') }
const redisUrl = inject('redisUrl')
let ingress: Ingress

beforeAll(async () => {
  await createTopics(kafka.brokers)
  ingress = await startIngress({ brokers: kafka.brokers, redisUrl, lookerHosts: 'https://looker.example.com' })
}, 120_000)

afterAll(async () => {
  await ingress?.close()
})

interface Looker {
  success: boolean
  send_id: string
  rows: { received: number; accepted: number; rejected: number }
  rejected_rows: { row: number; reason: string }[]
}

it('generated Looks arrive exactly on Kafka, with no row bytes anywhere else', { timeout: 300_000 }, async () => {
  const sendIds: string[] = []
  await fc.assert(
    fc.asyncProperty(look, async (generated) => {
      const { bytes, offsets } = renderLook(generated)
      const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
        type: 'query',
        scheduled_plan: { scheduled_plan_id: 77 },
        attachment: { mimetype: 'application/json;base64', data: bytes.toString('base64') },
      })
      const looker = answer.json.looker as unknown as Looker
      sendIds.push(looker.send_id)
      const broken = generated.rows.filter((row) => row.broken !== undefined).length
      expect(looker.rows).toEqual({
        received: generated.rows.length,
        accepted: generated.rows.length - broken,
        rejected: broken,
      })
      const rejected = generated.rows.flatMap((row, index) => (row.broken === undefined ? [] : [{ row, index }]))
      expect(looker.rejected_rows.map((r) => r.row)).toEqual(rejected.map(({ index }) => index + 1))
      looker.rejected_rows.forEach((reason, i) => {
        const { row, index } = rejected[i]!
        expect(reason.reason.startsWith(`${BROKEN_REASON[row.broken!]}${offsets[index]}`)).toBe(true)
      })
      expect(answer.text).not.toContain(CANARY)
      const record = await ingress.redis.hgetall(sendRecordKey(String(looker.send_id)))
      expect(record.send_id).toBe(looker.send_id)
      expect(JSON.stringify(record)).not.toContain(CANARY)

      const held = (await readTopic(kafka.brokers, TOPICS.identify))
        .filter((record) => record.headers[HEADERS.sendId] === looker.send_id)
        .map(
          (record) =>
            JSON.parse(record.value) as { userId: string; traits: unknown; context: { lookstream: { row: number } } },
        )
        .sort((a, b) => a.context.lookstream.row - b.context.lookstream.row)
      const good = generated.rows.flatMap((row, index) => (row.broken === undefined ? [{ row, index }] : []))
      expect(held.map((m) => m.context.lookstream.row)).toEqual(good.map(({ index }) => index + 1))
      held.forEach((message, i) => {
        const { row } = good[i]!
        expect(message.userId).toBe(expectedId(row.id!))
        expect(message.traits).toEqual(expectedTraits(generated, row))
      })
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 12) },
  )
  expect(ingress.logs.join('')).not.toContain(CANARY)
  const events = (await readTopic(kafka.brokers, TOPICS.sends)).filter((r) => sendIds.includes(r.key ?? ''))
  expect(events.length).toBe(2 * sendIds.length)
  for (const event of events) {
    expect(event.value).not.toContain(CANARY)
    expect(JSON.stringify(event.headers)).not.toContain(CANARY)
  }
})
