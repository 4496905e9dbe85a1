import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { HEADERS, TOPICS } from '@lookstream/events'
import { createKafka, createProducer, type LookstreamProducer } from '@lookstream/kafka'
import { createLogger, createRegistry } from '@lookstream/service'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { findAction } from '../src/actions/index.ts'
import { runSend, type SendOutcome } from '../src/execute/run-send.ts'
import { createIngressMetrics } from '../src/ingress-metrics.ts'
import { createTopics } from './support/ingress-harness.ts'
import { MESSAGE_BYTES_CASES } from './support/message-bytes-cases.ts'
import { readTopic } from './support/read-topic.ts'

// The messages are a public contract: for the same Look, the ingress produces the same records, byte for byte.
// message-bytes-expected.json holds the records the ingress produces for MESSAGE_BYTES_CASES (sendId written as
// SENDID, since each send here has its own); a change to the mapping or the serialization must leave the records
// read back from Kafka exactly equal to it (value text, key, topic, headers), and the send's outcome too.

interface ExpectedRecord {
  topic: string
  key: string
  headers: Record<string, string>
  value: string
}
interface Expected {
  outcome: Pick<SendOutcome, 'accepted' | 'rejected' | 'reasons' | 'notes'>
  records: ExpectedRecord[]
}

const EXPECTED = JSON.parse(
  readFileSync(new URL('./support/message-bytes-expected.json', import.meta.url), 'utf8'),
) as Record<string, Expected>

// eslint-disable-next-line @typescript-eslint/require-await -- an async byte source
async function* bytesOf(text: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(text)
}

let producer: LookstreamProducer
let brokers: string
const metrics = createIngressMetrics(createRegistry('message-bytes-test'))

beforeAll(async () => {
  brokers = inject('kafkaBrokers')
  await createTopics(brokers)
  const kafka = createKafka({
    brokers,
    clientId: 'message-bytes-test',
    logger: createLogger({ name: 'test', level: 'silent' }),
  })
  producer = await createProducer(kafka)
}, 60_000)

afterAll(async () => {
  await producer?.close()
})

describe('produced records are byte-for-byte those of the pinned Looks', () => {
  it.each(MESSAGE_BYTES_CASES.map((c) => [c.name, c] as const))('%s', async (name, look) => {
    const expected = EXPECTED[name]
    expect(expected, `message-bytes-expected.json has ${name}`).toBeDefined()
    const action = findAction(look.action)!
    const form: Record<string, string> = {}
    for (const field of action.form) if (field.default !== undefined) form[field.name] = field.default
    const sendId = `message-bytes-${randomUUID()}`
    const outcome = await runSend(
      {
        sendId,
        action,
        context: { connection: 'default', form: { ...form, ...look.form }, hiddenFields: new Set() },
        sendKey: 'plan:message-bytes',
        receivedAt: new Date('2026-12-01T06:00:05Z'),
        openSource: () => Promise.resolve(bytesOf(look.result)),
        maxRowBytes: 65_536,
        maxFieldBytes: 65_536,
      },
      producer,
      metrics,
    )
    expect({
      accepted: outcome.accepted,
      rejected: outcome.rejected,
      reasons: outcome.reasons,
      notes: outcome.notes,
    }).toEqual(expected!.outcome)

    const topics = [...new Set(expected!.records.map((record) => record.topic))]
    expect(topics.every((topic) => Object.values(TOPICS).includes(topic as never))).toBe(true)
    const read = (await Promise.all(topics.map((topic) => readTopic(brokers, topic))))
      .flat()
      .filter((record) => record.headers[HEADERS.sendId] === sendId)
      .map((record) => ({
        row: (JSON.parse(record.value) as { context: { lookstream: { row: number } } }).context.lookstream.row,
        record: { topic: record.topic, key: record.key, headers: record.headers, value: record.value },
      }))
      .sort((a, b) => a.row - b.row)
      .map(({ record }) => record)
    const placed = (text: string) => text.replaceAll('SENDID', sendId)
    expect(read).toEqual(
      expected!.records.map((record) => ({
        topic: record.topic,
        key: record.key,
        headers: Object.fromEntries(Object.entries(record.headers).map(([k, v]) => [k, placed(v)])),
        value: placed(record.value),
      })),
    )
  })
})
