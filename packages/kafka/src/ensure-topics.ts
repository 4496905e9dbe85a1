import { type ITopicConfig } from 'kafkajs'
import { type KafkaClient } from './create-kafka.ts'

export interface TopicSpec {
  topic: string
  numPartitions: number
  replicationFactor?: number
  /** Topic configs, e.g. { 'retention.ms': '604800000' }. */
  configs?: Record<string, string>
}

/**
 * Creates the topics that do not exist yet and waits for their leaders. Existing topics are left as they
 * are (their partition count is not changed). Returns the names that were missing when checked (another
 * process may have created some of them meanwhile, which is not an error).
 */
export async function ensureTopics(kafka: KafkaClient, specs: readonly TopicSpec[]): Promise<string[]> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const existing = new Set(await admin.listTopics())
    const missing = specs.filter((spec) => !existing.has(spec.topic))
    if (missing.length === 0) return []
    const topics: ITopicConfig[] = missing.map((spec) => ({
      topic: spec.topic,
      numPartitions: spec.numPartitions,
      replicationFactor: spec.replicationFactor ?? 1,
      configEntries: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
    }))
    // kafkajs treats "already exists" (another replica created it meanwhile) as success and returns false.
    await admin.createTopics({ topics, waitForLeaders: true })
    return missing.map((spec) => spec.topic)
  } finally {
    await admin.disconnect()
  }
}
