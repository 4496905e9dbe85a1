import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import {
  createKafka,
  createProducer,
  ensureTopics,
  runConsumer,
  type ConsumedRecord,
  type KafkaClient,
  type LookstreamProducer,
  type ProducerBatchInfo,
  type ProducerOptions,
} from '../src/index.ts'
import { testBrokers, testLogger, uniqueName, waitFor } from './test-broker.ts'

let kafka: KafkaClient

beforeAll(() => {
  kafka = createKafka({ brokers: testBrokers(), clientId: 'kafka-producer-test', logger: testLogger })
})

async function producer(options: ProducerOptions = {}): Promise<LookstreamProducer> {
  const created = await createProducer(kafka, options)
  onTestFinished(() => created.close())
  return created
}

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

async function highWatermark(topic: string, partition: number): Promise<bigint> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    return BigInt(offsets.find((entry) => entry.partition === partition)?.high ?? '-1')
  } finally {
    await admin.disconnect()
  }
}

describe('createProducer', () => {
  it('writes records that read back with key, headers and value intact, at the acknowledged offsets', async () => {
    const topic = uniqueName('roundtrip')
    await ensureTopics(kafka, [{ topic, numPartitions: 3 }])
    const p = await producer()
    const sent: { topic: string; key: string; value: string | Buffer; headers: Record<string, string> }[] = [
      { topic, key: 'user-1', value: '{"n":1}', headers: { 'lookstream-schema': 'identify.v1', utf8: 'ünï' } },
      { topic, key: 'user-2', value: Buffer.from([0, 1, 2, 255]), headers: {} },
      { topic, key: 'user-1', value: 'second for user-1', headers: { a: '' } },
    ]
    const acks = await Promise.all(sent.map((record) => p.send(record)))
    // Same key, same partition, in send order.
    expect(acks[2]!.partition).toBe(acks[0]!.partition)
    expect(BigInt(acks[2]!.offset)).toBeGreaterThan(BigInt(acks[0]!.offset))

    const records = await readAll(topic, 3)
    for (const [index, record] of sent.entries()) {
      const ack = acks[index]!
      const read = records.find((r) => r.partition === ack.partition && r.offset === ack.offset)
      expect(read, `record ${index} at ${ack.partition}/${ack.offset}`).toBeDefined()
      expect(read!.key?.toString()).toBe(record.key)
      expect(read!.value).toEqual(Buffer.from(record.value))
      expect(read!.headers).toEqual(record.headers)
    }
  })

  it('sends frozen headers (measured and encoded once per object) exactly as plain ones, and sizes them alike', async () => {
    const topic = uniqueName('frozen')
    await ensureTopics(kafka, [{ topic, numPartitions: 2 }])
    const p = await producer({ lingerMs: 600_000 })
    const frozen = Object.freeze({ 'lookstream-type': 'identify', utf8: 'ünï 🚀', empty: '' })
    const plain = { ...frozen }
    const first = p.send({ topic, key: 'a', value: 'v1', headers: frozen })
    const afterFrozen = p.stats().pendingBytes
    const second = p.send({ topic, key: 'a', value: 'v1', headers: plain })
    expect(p.stats().pendingBytes).toBe(2 * afterFrozen)
    const rest = Array.from({ length: 20 }, (_, i) => p.send({ topic, key: `k${i}`, value: `v${i}`, headers: frozen }))
    await p.flush()
    const acks = await Promise.all([first, second, ...rest])
    const records = await readAll(topic, acks.length)
    for (const ack of acks) {
      const read = records.find((r) => r.partition === ack.partition && r.offset === ack.offset)
      expect(read?.headers, `record at ${ack.partition}/${ack.offset}`).toEqual(plain)
    }
  })

  it('acknowledges each record of a batch spread over topics and partitions with its own offset', async () => {
    const topics = [uniqueName('acks-a'), uniqueName('acks-b')]
    await ensureTopics(
      kafka,
      topics.map((topic) => ({ topic, numPartitions: 3 })),
    )
    const p = await producer({ lingerMs: 600_000 })
    const sent = Array.from({ length: 60 }, (_, i) => ({ topic: topics[i % 2]!, key: `k${i % 7}`, value: `v${i}` }))
    const sends = sent.map((record) => p.send(record))
    await p.flush()
    const acks = await Promise.all(sends)
    const slots = new Set(acks.map((ack) => `${ack.topic}/${ack.partition}/${ack.offset}`))
    expect(slots.size).toBe(sent.length)
    const records = [...(await readAll(topics[0]!, 30)), ...(await readAll(topics[1]!, 30))]
    for (const [index, ack] of acks.entries()) {
      const read = records.find(
        (r) => r.topic === ack.topic && r.partition === ack.partition && r.offset === ack.offset,
      )
      expect(read?.value?.toString(), `record ${index}`).toBe(sent[index]!.value)
    }
  })

  it('resolves send only once the broker holds the record', async () => {
    const topic = uniqueName('acked')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    // A long linger keeps the record in the producer until flush(): send must not resolve before that.
    const p = await producer({ lingerMs: 600_000 })
    let resolved = false
    const ack = p.send({ topic, key: 'k', value: 'v' }).then(async (result) => {
      resolved = true
      return { result, highWatermarkAtAck: await highWatermark(topic, 0) }
    })
    await waitFor('the record to be queued', () => p.stats().pendingMessages === 1)
    await new Promise((resolve) => setImmediate(resolve))
    expect(resolved).toBe(false)
    expect(await highWatermark(topic, 0)).toBe(0n)

    await p.flush()
    const { result, highWatermarkAtAck } = await ack
    expect(result).toEqual({ topic, partition: 0, offset: '0' })
    expect(highWatermarkAtAck).toBe(1n)
  })

  it('rejects send with the cause when the broker refuses the record', async () => {
    const strict = createKafka({ brokers: testBrokers(), clientId: 'strict', logger: testLogger, retries: 1 })
    const p = await createProducer(strict)
    onTestFinished(() => p.close())
    // Topics are never created implicitly: producing to a missing one fails instead of inventing it.
    await expect(p.send({ topic: uniqueName('missing'), key: 'k', value: 'v' })).rejects.toThrow()
    expect(p.stats().pendingMessages).toBe(0)
  })

  it('refuses a record over maxRecordBytes up front, without touching the others', async () => {
    const topic = uniqueName('too-large')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    const p = await producer({ maxRecordBytes: 10_000, lingerMs: 600_000 })
    const small = p.send({ topic, value: 'small' })
    await expect(p.send({ topic, value: 'x'.repeat(10_001) })).rejects.toMatchObject({
      code: 'LS_KAFKA_RECORD_TOO_LARGE',
    })
    await p.flush()
    expect(await small).toMatchObject({ topic, offset: '0' })
  })

  it('rejects (never throws) a record whose header value is not a string, and counts nothing for it', async () => {
    const p = await producer({ lingerMs: 600_000 })
    const headers = { 'x-bad': undefined } as unknown as Record<string, string>
    let sent: Promise<unknown> | undefined
    expect(() => (sent = p.send({ topic: uniqueName('unused'), value: 'v', headers }))).not.toThrow()
    await expect(sent).rejects.toThrow(TypeError)
    expect(p.stats().pendingMessages).toBe(0)
  })

  it('makes the sender wait while the in-flight bound is reached (backpressure)', async () => {
    const topic = uniqueName('backpressure')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    const p = await producer({ maxInFlightMessages: 2, lingerMs: 600_000 })
    const events: string[] = []
    const first = p.send({ topic, key: 'k', value: 'a' }).then(() => events.push('a acked'))
    const second = p.send({ topic, key: 'k', value: 'b' }).then(() => events.push('b acked'))
    expect(p.isWritable()).toBe(false)
    const writable = p.whenWritable().then(() => events.push('writable'))
    const third = p.send({ topic, key: 'k', value: 'c' }).then((ack) => {
      events.push('c acked')
      return ack
    })
    expect(p.stats()).toMatchObject({ pendingMessages: 2, waitingSends: 1 })
    await p.flush()
    await Promise.all([first, second, writable, third])
    // a and b filled the bound, so c could only enter once both were acknowledged.
    expect(events.indexOf('c acked')).toBeGreaterThan(events.indexOf('a acked'))
    expect(events.indexOf('c acked')).toBeGreaterThan(events.indexOf('b acked'))
    expect(events.slice(0, 2).sort()).toEqual(['a acked', 'b acked'])
    expect(events.indexOf('writable')).toBeGreaterThan(1)
    expect((await third).offset).toBe('2')
    expect(p.stats()).toMatchObject({ pendingMessages: 0, waitingSends: 0, pendingBytes: 0 })
  })

  it('bounds in-flight bytes too', async () => {
    const topic = uniqueName('bytes')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    const p = await producer({ maxInFlightBytes: 3000, lingerMs: 600_000 })
    const value = 'x'.repeat(1000)
    const sends = [p.send({ topic, value }), p.send({ topic, value })]
    expect(p.stats().waitingSends).toBe(0)
    sends.push(p.send({ topic, value }))
    expect(p.stats()).toMatchObject({ pendingMessages: 2, waitingSends: 1 })
    await p.flush()
    await Promise.all(sends)
    expect(p.stats().pendingBytes).toBe(0)
  })

  it('batches records from concurrent callers and topics into one sendBatch', async () => {
    const topics = [uniqueName('batch-a'), uniqueName('batch-b')]
    await ensureTopics(
      kafka,
      topics.map((topic) => ({ topic, numPartitions: 2 })),
    )
    const batches: ProducerBatchInfo[] = []
    const p = await producer({ lingerMs: 200, metrics: { onBatch: (info) => batches.push(info) } })
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => p.send({ topic: topics[i % 2]!, key: `k${i}`, value: `v${i}` })),
    )
    expect(batches).toHaveLength(1)
    expect(batches[0]).toMatchObject({ messages: 50, ok: true })
  })

  it('splits at maxBatchMessages', async () => {
    const topic = uniqueName('split')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    const batches: ProducerBatchInfo[] = []
    const p = await producer({ maxBatchMessages: 10, lingerMs: 600_000, metrics: { onBatch: (i) => batches.push(i) } })
    const sends = Array.from({ length: 25 }, (_, i) => p.send({ topic, value: `v${i}` }))
    await p.flush()
    await Promise.all(sends)
    expect(batches.map((batch) => batch.messages)).toEqual([10, 10, 5])
  })

  it('close() flushes what was accepted, then refuses new records', async () => {
    const topic = uniqueName('close')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    const p = await createProducer(kafka, { lingerMs: 600_000 })
    const sends = Array.from({ length: 5 }, (_, i) => p.send({ topic, key: 'k', value: `v${i}` }))
    await p.close()
    const acks = await Promise.all(sends)
    expect(acks.map((ack) => ack.offset)).toEqual(['0', '1', '2', '3', '4'])
    await expect(p.send({ topic, value: 'late' })).rejects.toMatchObject({ code: 'LS_KAFKA_PRODUCER_CLOSED' })
    expect((await readAll(topic, 5)).map((r) => r.value?.toString())).toEqual(['v0', 'v1', 'v2', 'v3', 'v4'])
  })
})
