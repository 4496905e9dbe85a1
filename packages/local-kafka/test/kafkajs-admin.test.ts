import { type Admin } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalKafka, type LocalKafka } from '../src/index.ts'
import { testKafka, uniqueName } from './support/kafka-client.ts'

describe('kafkajs admin against the broker process', () => {
  let broker: LocalKafka
  let admin: Admin

  beforeAll(async () => {
    broker = await startLocalKafka({ port: 0, partitions: 2 })
    admin = testKafka(broker.brokers).admin()
    await admin.connect()
  })

  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
  })

  it('creates, lists and deletes topics', async () => {
    const a = uniqueName('admin-a')
    const b = uniqueName('admin-b')
    expect(await admin.createTopics({ topics: [{ topic: a, numPartitions: 3 }, { topic: b }] })).toBe(true)
    expect(await admin.listTopics()).toEqual(expect.arrayContaining([a, b]))
    // An existing topic is not an error for kafkajs: createTopics returns false.
    expect(await admin.createTopics({ topics: [{ topic: a }] })).toBe(false)
    await admin.deleteTopics({ topics: [a] })
    const after = await admin.listTopics()
    expect(after).not.toContain(a)
    expect(after).toContain(b)
  })

  it('reports topic metadata with this broker as leader of every partition', async () => {
    const topic = uniqueName('admin-meta')
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
    expect(topics).toHaveLength(1)
    expect(topics[0]!.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2, 3])
    for (const p of topics[0]!.partitions) {
      expect(p.leader).toBe(0)
      expect(p.replicas).toEqual([0])
      expect(p.isr).toEqual([0])
    }
    const cluster = await admin.describeCluster()
    expect(cluster.controller).toBe(0)
    expect(cluster.brokers).toEqual([{ nodeId: 0, host: '127.0.0.1', port: broker.port }])
  })

  it('rejects invalid topic names and replication factors above 1', async () => {
    const errorTypes = async (topic: string, replicationFactor = 1): Promise<string[]> => {
      const err = (await admin.createTopics({ topics: [{ topic, replicationFactor }] }).catch((e: unknown) => e)) as {
        errors?: { type: string }[]
      }
      return (err.errors ?? []).map((e) => e.type)
    }
    expect(await errorTypes('bad name!')).toEqual(['INVALID_TOPIC_EXCEPTION'])
    expect(await errorTypes(uniqueName('rf'), 3)).toEqual(['INVALID_REPLICATION_FACTOR'])
  })

  it('auto-creates a topic on metadata with the default partition count', async () => {
    const topic = uniqueName('auto')
    const producer = testKafka(broker.brokers).producer()
    await producer.connect()
    await producer.send({ topic, messages: [{ value: 'x' }] })
    await producer.disconnect()
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
    expect(topics[0]!.partitions).toHaveLength(2)
  })

  it('describes topic configs', async () => {
    const topic = uniqueName('configs')
    await admin.createTopics({ topics: [{ topic }] })
    const res = await admin.describeConfigs({
      resources: [{ type: 2, name: topic, configNames: ['retention.ms', 'cleanup.policy'] }],
      includeSynonyms: false,
    })
    const entries = Object.fromEntries(res.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]))
    expect(entries).toEqual({ 'retention.ms': '604800000', 'cleanup.policy': 'delete' })
  })

  it('fetches earliest, latest and time-based offsets', async () => {
    const topic = uniqueName('offsets')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const producer = testKafka(broker.brokers).producer()
    await producer.connect()
    const t0 = Date.now()
    await producer.send({ topic, messages: [{ value: 'a', timestamp: String(t0 - 10_000) }] })
    await producer.send({ topic, messages: [{ value: 'b', timestamp: String(t0) }] })
    await producer.disconnect()
    expect(await admin.fetchTopicOffsets(topic)).toEqual([{ partition: 0, offset: '2', high: '2', low: '0' }])
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, t0 - 1)).toEqual([{ partition: 0, offset: '1' }])
    // No record that late: the broker answers -1 and kafkajs substitutes the high watermark.
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, t0 + 60_000)).toEqual([{ partition: 0, offset: '2' }])
  })
})
