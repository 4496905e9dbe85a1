import { readTopicWithKcat } from '@lookstream/testing'
import { spawnSync } from 'node:child_process'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  createKafka,
  createProducer,
  ensureTopics,
  runConsumer,
  type ConsumedRecord,
  type KafkaClient,
} from '../src/index.ts'
import { testBrokers, testLogger, uniqueName, waitFor } from './test-broker.ts'

const hasKcat = spawnSync('kcat', ['-V']).status === 0
let kafka: KafkaClient

beforeAll(() => {
  kafka = createKafka({ brokers: testBrokers(), clientId: 'kafka-compression-test', logger: testLogger })
})

async function readAll(topic: string, count: number): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = []
  const runner = await runConsumer({
    kafka,
    groupId: uniqueName('reader'),
    topics: [topic],
    fromBeginning: true,
    logger: testLogger,
    eachBatch: (batch) => {
      records.push(...batch.records)
      for (const record of batch.records) batch.markDone(record)
    },
  })
  try {
    await waitFor(`${count} records on ${topic}`, () => records.length >= count)
  } finally {
    await runner.stop()
  }
  return records
}

describe.each(['gzip', 'zstd'] as const)('producer compression %s', (compression) => {
  const topic = uniqueName(`compressed-${compression}`)
  const values = Array.from({ length: 50 }, (_, i) => `{"userId":"u-${i}","traits":{"plan":"${'pro '.repeat(i % 7)}"}}`)

  beforeAll(async () => {
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    const producer = await createProducer(kafka, { compression, lingerMs: 20 })
    try {
      await Promise.all(
        values.map((value, i) => producer.send({ topic, key: `k${i}`, value, headers: { kind: 'identify' } })),
      )
    } finally {
      await producer.close()
    }
  })

  it('writes batches that kafkajs (through createKafka) reads back intact', async () => {
    const consumed = await readAll(topic, values.length)
    expect(consumed.map((r) => r.value?.toString())).toEqual(values)
  })

  it.skipIf(!hasKcat)('writes batches that kcat (librdkafka, an independent decoder) reads back intact', async () => {
    const read = await readTopicWithKcat(testBrokers(), topic)
    expect(read.map((r) => r.value)).toEqual(values)
    expect(read[0]!.headers).toEqual({ kind: 'identify' })
  })
})
