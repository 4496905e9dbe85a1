import { describe, expect, it } from 'vitest'
import { createKafka, ensureTopics } from '../src/index.ts'
import { testBrokers, testLogger, uniqueName } from './test-broker.ts'

describe('ensureTopics', () => {
  it('creates missing topics with their partitions and configs, and leaves existing ones alone', async () => {
    const kafka = createKafka({ brokers: testBrokers(), clientId: 'ensure-topics-test', logger: testLogger })
    const a = uniqueName('ensure-a')
    const b = uniqueName('ensure-b')
    expect(await ensureTopics(kafka, [{ topic: a, numPartitions: 3, configs: { 'retention.ms': '3600000' } }])).toEqual(
      [a],
    )
    // a exists already (with 3 partitions; asking for 5 does not change it), b is new.
    expect(
      await ensureTopics(kafka, [
        { topic: a, numPartitions: 5 },
        { topic: b, numPartitions: 2 },
      ]),
    ).toEqual([b])
    expect(await ensureTopics(kafka, [{ topic: a, numPartitions: 3 }])).toEqual([])

    const admin = kafka.admin()
    await admin.connect()
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [a, b] })
      expect(topics.map((topic) => [topic.name, topic.partitions.length]).sort()).toEqual(
        [
          [a, 3],
          [b, 2],
        ].sort(),
      )
    } finally {
      await admin.disconnect()
    }
  })

  it('tolerates another caller creating the same topics at the same time', async () => {
    const kafka = createKafka({ brokers: testBrokers(), clientId: 'ensure-topics-race', logger: testLogger })
    const topic = uniqueName('ensure-race')
    const results = await Promise.all([1, 2, 3].map(() => ensureTopics(kafka, [{ topic, numPartitions: 2 }])))
    expect(results.flat().every((created) => created === topic)).toBe(true)
    expect(await ensureTopics(kafka, [{ topic, numPartitions: 2 }])).toEqual([])
  })
})
