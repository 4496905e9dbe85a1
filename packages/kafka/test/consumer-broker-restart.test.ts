import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startLocalKafka, type LocalKafka } from '@lookstream/local-kafka'
import { pino } from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createKafka, createProducer, ensureTopics, runConsumer, type ConsumedRecord } from '../src/index.ts'
import { waitFor } from './test-broker.ts'

describe('runConsumer across a broker restart', () => {
  it('carries on after the broker comes back, without losing or repeating committed records', async () => {
    // Its own broker, on disk so that a restart keeps the records and the committed offsets.
    const dataDir = mkdtempSync(join(tmpdir(), 'kafka-restart-'))
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }))
    let broker: LocalKafka = await startLocalKafka({ dataDir })
    onTestFinished(() => broker.stop())
    const port = broker.port
    // Connection errors while the broker is down are expected; only a fatal one is worth printing.
    const logger = pino({ level: 'fatal' })
    const kafka = createKafka({ brokers: broker.brokers, clientId: 'restart', logger })
    await ensureTopics(kafka, [{ topic: 'restart', numPartitions: 1 }])
    const producer = await createProducer(kafka)
    await Promise.all(['r0', 'r1'].map((value) => producer.send({ topic: 'restart', key: 'k', value })))
    await producer.close()

    const seen: ConsumedRecord[] = []
    const runner = await runConsumer({
      kafka,
      groupId: 'restart-group',
      topics: ['restart'],
      fromBeginning: true,
      logger,
      eachBatch: (batch) => {
        seen.push(...batch.records)
        for (const record of batch.records) batch.markDone(record)
      },
    })
    onTestFinished(() => runner.stop())
    await waitFor('the first two records', () => seen.length === 2)
    await runner.commit()

    await broker.stop()
    broker = await startLocalKafka({ dataDir, port })
    const again = await createProducer(kafka)
    onTestFinished(() => again.close())
    await again.send({ topic: 'restart', key: 'k', value: 'r2' })

    await waitFor('the record produced after the restart', () => seen.length >= 3, 90_000)
    expect(seen.map((record) => record.value?.toString())).toEqual(['r0', 'r1', 'r2'])
  }, 120_000)
})
