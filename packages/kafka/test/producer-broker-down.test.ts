import { startLocalKafka } from '@lookstream/local-kafka'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createKafka, createProducer, ensureTopics } from '../src/index.ts'
import { pino } from 'pino'

describe('createProducer when the broker goes away', () => {
  it('rejects the sends it cannot deliver, within the retries, and still closes', async () => {
    // Its own broker: this test stops it.
    const broker = await startLocalKafka({ inMemory: true })
    onTestFinished(() => broker.stop())
    // Connection errors are the point of this test; only a fatal one is worth printing.
    const logger = pino({ level: 'fatal' })
    const kafka = createKafka({ brokers: broker.brokers, clientId: 'broker-down', logger, retries: 2 })
    await ensureTopics(kafka, [{ topic: 'down', numPartitions: 1 }])
    const producer = await createProducer(kafka, { retries: 2 })
    onTestFinished(() => producer.close())
    expect(await producer.send({ topic: 'down', key: 'k', value: 'before' })).toMatchObject({ offset: '0' })

    await broker.stop()
    const sends = [
      producer.send({ topic: 'down', key: 'k', value: 'after-1' }),
      producer.send({ topic: 'down', value: 'after-2' }),
    ]
    const results = await Promise.allSettled(sends)
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected'])
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/ECONNREFUSED|Connection|closed/i)
    expect(producer.stats()).toMatchObject({ pendingMessages: 0, pendingBytes: 0, waitingSends: 0 })
    await producer.close()
  }, 60_000)
})
