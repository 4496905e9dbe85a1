import { startLocalKafka, type LocalKafka } from '@lookstream/local-kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createKafka,
  lookstreamTopics,
  planTopics,
  PRODUCTION_TOPIC_POLICY,
  runTopicsCommand,
  topicRisks,
  verifyTopics,
  type ActualTopic,
} from '../src/index.ts'
import { testLogger } from './test-broker.ts'

function actual(
  topic: string,
  partitions: number,
  replicationFactor: number,
  configs: Record<string, string>,
): ActualTopic {
  return { topic, partitions, replicationFactor, configs, overrides: configs }
}

describe('topic policy', () => {
  it('names every lookstream topic, with the DLQ kept longer', () => {
    const topics = lookstreamTopics(PRODUCTION_TOPIC_POLICY, ['segment'])
    expect(topics.map((t) => t.topic)).toEqual([
      'lookstream.identify.v1',
      'lookstream.track.v1',
      'lookstream.group.v1',
      'lookstream.sends.v1',
      'lookstream.retry.segment',
      'lookstream.dlq.segment',
    ])
    expect(topics.every((t) => t.replicationFactor === 3 && t.configs['min.insync.replicas'] === '2')).toBe(true)
    expect(topics.at(-1)!.configs['retention.ms']).toBe(String(30 * 24 * 3600 * 1000))
    expect(topics[0]!.configs['retention.ms']).toBe(String(7 * 24 * 3600 * 1000))
  })

  it('calls a topic safe only when one broker loss neither loses data nor stops writes', () => {
    expect(topicRisks(actual('t', 6, 3, { 'min.insync.replicas': '2' }))).toEqual([])
    expect(topicRisks(actual('t', 6, 1, { 'min.insync.replicas': '1' }))).toEqual([
      "replication factor 1: losing its broker loses the topic's data",
      'min.insync.replicas=1: an acknowledged write may exist on one broker only',
    ])
    expect(topicRisks(actual('t', 6, 2, { 'min.insync.replicas': '2' }))).toEqual([
      'min.insync.replicas=2 with replication factor 2: one broker down stops every write',
    ])
  })

  it('plans creations, more partitions, config changes, and leaves replication factor to a person', () => {
    const [identify, track] = lookstreamTopics(PRODUCTION_TOPIC_POLICY, [])
    const changes = planTopics(
      [identify!, track!],
      new Map([[track!.topic, actual(track!.topic, 3, 1, { ...track!.configs, 'retention.ms': '1000' })]]),
    )
    expect(changes.map((c) => c.kind)).toEqual(['create', 'add-partitions', 'manual', 'alter-configs'])
    expect(changes[3]).toEqual({
      kind: 'alter-configs',
      topic: track!.topic,
      changes: [{ name: 'retention.ms', from: '1000', to: track!.configs['retention.ms'] }],
    })
  })
})

describe('topics command against local-kafka', () => {
  let broker: LocalKafka
  const out: string[] = []
  const err: string[] = []
  const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }
  const run = async (args: string[], extra: Record<string, string> = {}) => {
    out.length = 0
    err.length = 0
    return runTopicsCommand([...args, '--destinations', 'segment'], io, { KAFKA_BROKERS: broker.brokers, ...extra })
  }
  // local-kafka is one broker: replication factor 1 is all it can hold.
  const singleNode = {
    KAFKA_TOPIC_REPLICATION_FACTOR: '1',
    KAFKA_TOPIC_MIN_INSYNC_REPLICAS: '1',
    KAFKA_TOPIC_PARTITIONS: '2',
  }

  beforeAll(async () => {
    broker = await startLocalKafka({ inMemory: true, logLevel: 'silent' })
  })

  afterAll(async () => {
    await broker?.stop()
  })

  it('plans, applies, converges, and applies a retention change through AlterConfigs', async () => {
    expect(await run(['plan'], singleNode)).toBe(0)
    expect(out).toHaveLength(6)
    expect(out[0]).toBe(
      'create lookstream.identify.v1: 2 partitions, replication factor 1, cleanup.policy=delete, min.insync.replicas=1, retention.ms=604800000',
    )
    expect(await run(['apply'], singleNode)).toBe(0)
    expect(await run(['plan'], singleNode)).toBe(0)
    expect(out).toEqual([])
    expect(err).toEqual(['6 topics as wanted: nothing to change'])

    expect(await run(['apply'], { ...singleNode, KAFKA_DLQ_RETENTION_MS: '86400000' })).toBe(0)
    expect(out).toEqual(['alter lookstream.dlq.segment: retention.ms 2592000000 -> 86400000'])
    expect(await run(['plan'], { ...singleNode, KAFKA_DLQ_RETENTION_MS: '86400000' })).toBe(0)
    expect(out).toEqual([])
  })

  it('verify refuses the single-node topics and names the fix', async () => {
    expect(await run(['verify'])).toBe(1)
    expect(out[0]).toBe(
      "UNSAFE  lookstream.identify.v1: replication factor 1: losing its broker loses the topic's data; min.insync.replicas=1: an acknowledged write may exist on one broker only",
    )
    expect(err).toEqual(['6 of 6 topics unsafe: run "pnpm topics apply" (see docs/operations.md)'])
  })

  it('services in verify mode refuse to start on them with one StartupError', async () => {
    const kafka = createKafka({ brokers: broker.brokers, clientId: 'topics-test', logger: testLogger, retries: 1 })
    await expect(verifyTopics(kafka, ['lookstream.identify.v1', 'lookstream.nothing-here'])).rejects.toMatchObject({
      code: 'LS_KAFKA_TOPICS_UNSAFE',
      message: expect.stringMatching(/lookstream\.nothing-here does not exist.*run "pnpm topics apply"/) as unknown,
    })
  })

  it('reports what the cluster refuses (production replication factor on one broker)', async () => {
    const fresh = await startLocalKafka({ inMemory: true, logLevel: 'silent' })
    try {
      const code = await runTopicsCommand(['apply', '--destinations', 'segment'], io, { KAFKA_BROKERS: fresh.brokers })
      expect(code).toBe(1)
      expect(err.at(-1)).toMatch(/^topics apply failed: /)
    } finally {
      await fresh.stop()
    }
  })

  it('rejects bad usage and bad settings with exit 2', async () => {
    expect(await runTopicsCommand(['frobnicate'], io, {})).toBe(2)
    expect(await run(['plan'], { KAFKA_TOPIC_REPLICATION_FACTOR: 'three' })).toBe(2)
    expect(err[0]).toMatch(/^LS_CONFIG_INVALID: .*KAFKA_TOPIC_REPLICATION_FACTOR/s)
  })
})
