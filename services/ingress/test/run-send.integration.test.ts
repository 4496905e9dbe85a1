import { createKafka, createProducer, type LookstreamProducer } from '@lookstream/kafka'
import { createLogger, createRegistry } from '@lookstream/service'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { findAction } from '../src/actions/index.ts'
import { runSend, type SendCounts } from '../src/execute/run-send.ts'
import { createIngressMetrics } from '../src/ingress-metrics.ts'
import { createTopics } from './support/ingress-harness.ts'

let producer: LookstreamProducer

beforeAll(async () => {
  const brokers = inject('kafkaBrokers')
  await createTopics(brokers)
  const kafka = createKafka({
    brokers,
    clientId: 'run-send-test',
    logger: createLogger({ name: 'test', level: 'silent' }),
  })
  // A tiny in-flight window, so the send has to wait for Kafka again and again.
  producer = await createProducer(kafka, { maxInFlightMessages: 5, maxBatchMessages: 5 })
}, 60_000)

afterAll(async () => {
  await producer?.close()
})

it('reports progress while streaming and waits for the producer window (backpressure)', async () => {
  const rows = 60
  const chunks = [
    `{"ran_at":"2026-11-22T01:00:00Z","fields":{"dimensions":[{"name":"u.id","tags":["user_id"]}]},"data":[`,
  ]
  for (let i = 0; i < rows; i++) chunks.push(`${i === 0 ? '' : ','}{"u.id":{"value":"r-${i}"}}`)
  chunks.push(']}')
  let maxPending = 0
  // eslint-disable-next-line @typescript-eslint/require-await -- an async byte source
  async function* source(): AsyncGenerator<Uint8Array> {
    for (const chunk of chunks) {
      maxPending = Math.max(maxPending, producer.stats().pendingMessages + producer.stats().waitingSends)
      yield Buffer.from(chunk)
    }
  }
  const progress: SendCounts[] = []
  const outcome = await runSend(
    {
      sendId: 'progress-test',
      action: findAction('segment_identify')!,
      context: { connection: 'default', form: {}, hiddenFields: new Set() },
      sendKey: 'plan:progress',
      receivedAt: new Date(),
      openSource: () => Promise.resolve(source()),
      maxRowBytes: 1000,
      maxFieldBytes: 1000,
      progressEveryMs: 0,
      onProgress: (counts) => progress.push({ ...counts }),
    },
    producer,
    createIngressMetrics(createRegistry('run-send-test')),
  )
  expect(outcome).toMatchObject({ success: true, received: rows, accepted: rows, rejected: 0 })
  expect(progress.length).toBeGreaterThan(10)
  expect(progress.map((p) => p.received)).toEqual([...progress.map((p) => p.received)].sort((a, b) => a - b))
  // The reader never ran ahead of the producer's window by more than one chunk's rows.
  expect(maxPending).toBeLessThanOrEqual(6)
})
