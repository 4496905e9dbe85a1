import { CompressionTypes, type Admin, type Consumer, type Kafka, type KafkaMessage } from 'kafkajs'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLocalKafka, type LocalKafka } from '../src/index.ts'
import { testConsumerConfig, testKafka, uniqueName, waitFor } from './support/kafka-client.ts'
import { ResponseDroppingProxy } from './support/response-dropping-proxy.ts'

interface Seen {
  partition: number
  message: KafkaMessage
}

describe('kafkajs produce and consume against the broker process', () => {
  let broker: LocalKafka
  let kafka: Kafka
  let admin: Admin
  const consumers: Consumer[] = []

  beforeAll(async () => {
    broker = await startLocalKafka({ port: 0 })
    kafka = testKafka(broker.brokers)
    admin = kafka.admin()
    await admin.connect()
  })

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.disconnect()))
  })

  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
  })

  async function consumeAll(topic: string, expected: number, fromBeginning = true): Promise<Seen[]> {
    const consumer = kafka.consumer(testConsumerConfig(uniqueName('g')))
    consumers.push(consumer)
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning })
    const seen: Seen[] = []
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        seen.push({ partition, message })
        return Promise.resolve()
      },
    })
    await waitFor(() => (seen.length >= expected ? true : undefined), 20_000, `${expected} messages`)
    return seen
  }

  it.each([-1, 1] as const)('produces with acks=%i and reads back in order', async (acks) => {
    const topic = uniqueName(`acks${acks}`)
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const producer = kafka.producer()
    await producer.connect()
    const res = await producer.send({ topic, acks, messages: [{ value: 'm0' }, { value: 'm1' }, { value: 'm2' }] })
    expect(res).toEqual([expect.objectContaining({ topicName: topic, partition: 0, errorCode: 0, baseOffset: '0' })])
    const res2 = await producer.send({ topic, acks, messages: [{ value: 'm3' }] })
    expect(res2[0]!.baseOffset).toBe('3')
    await producer.disconnect()
    const seen = await consumeAll(topic, 4)
    expect(seen.map((s) => [s.message.offset, s.message.value?.toString()])).toEqual([
      ['0', 'm0'],
      ['1', 'm1'],
      ['2', 'm2'],
      ['3', 'm3'],
    ])
  })

  it('produces with acks=0 (no response) and the messages are stored', async () => {
    const topic = uniqueName('acks0')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const producer = kafka.producer()
    await producer.connect()
    for (let i = 0; i < 5; i++) await producer.send({ topic, acks: 0, messages: [{ value: `v${i}` }] })
    await producer.disconnect()
    await waitFor(async () => ((await admin.fetchTopicOffsets(topic))[0]!.high === '5' ? true : undefined))
    const seen = await consumeAll(topic, 5)
    expect(seen.map((s) => s.message.value?.toString())).toEqual(['v0', 'v1', 'v2', 'v3', 'v4'])
  })

  it('stores gzip batches as sent and consumers decompress them', async () => {
    const topic = uniqueName('gzip')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const producer = kafka.producer()
    await producer.connect()
    const messages = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `gzip value ${i} `.repeat(20) }))
    await producer.send({ topic, compression: CompressionTypes.GZIP, messages })
    await producer.disconnect()
    expect((await admin.fetchTopicOffsets(topic))[0]!.high).toBe('50')
    const seen = await consumeAll(topic, 50)
    expect(seen.map((s) => s.message.value?.toString())).toEqual(messages.map((m) => m.value))
  })

  it('round-trips headers, null keys and null values', async () => {
    const topic = uniqueName('headers')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({
      topic,
      messages: [
        { key: null, value: 'no key', headers: { a: '1', b: Buffer.from([0, 255]) } },
        { key: 'tombstone', value: null },
        { key: null, value: null },
      ],
    })
    await producer.disconnect()
    const seen = await consumeAll(topic, 3)
    const [m0, m1, m2] = seen.map((s) => s.message)
    expect(m0!.key).toBeNull()
    expect(m0!.value?.toString()).toBe('no key')
    expect(m0!.headers).toEqual({ a: Buffer.from('1'), b: Buffer.from([0, 255]) })
    expect(m1!.key?.toString()).toBe('tombstone')
    expect(m1!.value).toBeNull()
    expect(m2!.key).toBeNull()
    expect(m2!.value).toBeNull()
  })

  it('carries 1 MB values (a batch larger than the per-partition fetch limit)', async () => {
    const topic = uniqueName('big')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const producer = kafka.producer()
    await producer.connect()
    const values = [0, 1, 2].map((i) => Buffer.alloc(1024 * 1024, 97 + i))
    await producer.send({ topic, messages: values.map((value) => ({ value })) })
    await producer.disconnect()
    const consumer = kafka.consumer({ ...testConsumerConfig(uniqueName('g')), maxBytesPerPartition: 256 * 1024 })
    consumers.push(consumer)
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const seen: Buffer[] = []
    await consumer.run({ eachMessage: ({ message }) => Promise.resolve(void seen.push(message.value!)) })
    await waitFor(() => (seen.length >= 3 ? true : undefined), 20_000, 'three 1 MB messages')
    expect(seen.map((v, i) => v.equals(values[i]!))).toEqual([true, true, true])
  })

  it('starts from the end without fromBeginning and can seek', async () => {
    const topic = uniqueName('seek')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ value: `old${i}` })) })

    const consumer = kafka.consumer(testConsumerConfig(uniqueName('g')))
    consumers.push(consumer)
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: false })
    const seen: string[] = []
    // After a completed fetch the consumer has resolved its start offset (the end of the log).
    let fetched = false
    consumer.on(consumer.events.FETCH, () => {
      fetched = true
    })
    await consumer.run({ eachMessage: ({ message }) => Promise.resolve(void seen.push(message.value!.toString())) })
    await waitFor(() => (fetched ? true : undefined), 15_000, 'a first fetch')
    await producer.send({ topic, messages: [{ value: 'new0' }] })
    await waitFor(() => (seen.length >= 1 ? true : undefined), 15_000, 'the new message')
    expect(seen).toEqual(['new0'])

    consumer.seek({ topic, partition: 0, offset: '7' })
    await waitFor(() => (seen.length >= 5 ? true : undefined), 15_000, 'messages after seek')
    expect(seen).toEqual(['new0', 'old7', 'old8', 'old9', 'new0'])
    await producer.disconnect()
  })

  it('spreads keyed messages over partitions and keeps per-key order', async () => {
    const topic = uniqueName('keys')
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })
    const producer = kafka.producer()
    await producer.connect()
    const messages = Array.from({ length: 200 }, (_, i) => ({ key: `user-${i % 10}`, value: String(i) }))
    for (let i = 0; i < messages.length; i += 20) await producer.send({ topic, messages: messages.slice(i, i + 20) })
    await producer.disconnect()
    const seen = await consumeAll(topic, 200)
    expect(new Set(seen.map((s) => s.partition)).size).toBeGreaterThan(1)
    const byKey = new Map<string, number[]>()
    for (const s of seen) {
      const k = s.message.key!.toString()
      byKey.set(k, [...(byKey.get(k) ?? []), Number(s.message.value!.toString())])
    }
    for (const values of byKey.values()) expect(values).toEqual([...values].sort((a, b) => a - b))
    expect(seen).toHaveLength(200)
  })

  it('stores a batch once when an idempotent producer retries it after a lost response', async () => {
    const topic = uniqueName('idempotent')
    // A second broker that advertises the proxy's port, so every request of the producer passes the proxy,
    // which swallows the response to the first Produce: kafkajs retries the same batch (same sequence).
    const proxy = await ResponseDroppingProxy.start(0)
    const behind = await startLocalKafka({ port: 0, advertisedPort: proxy.port })
    proxy.upstreamPort = behind.port
    const direct = testKafka(behind.brokers).admin()
    try {
      await direct.connect()
      await direct.createTopics({ topics: [{ topic, numPartitions: 1 }] })
      const producer = testKafka(`127.0.0.1:${proxy.port}`).producer({ idempotent: true, maxInFlightRequests: 1 })
      await producer.connect()
      await producer.send({ topic, acks: -1, messages: [{ value: 'once' }] })
      await producer.send({ topic, acks: -1, messages: [{ value: 'twice' }] })
      await producer.disconnect()
      expect(proxy.dropped).toBe(1)
      // Two sends, one of them delivered twice to the broker: two records.
      expect(await direct.fetchTopicOffsets(topic)).toEqual([{ partition: 0, offset: '2', high: '2', low: '0' }])
    } finally {
      await direct.disconnect()
      await proxy.close()
      await behind.stop()
    }
  })
})
