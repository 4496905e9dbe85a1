import { readTopicWithKcat } from '@lookstream/testing'

export interface TopicRecord {
  topic: string
  partition: number
  offset: number
  key: string | null
  value: string
  headers: Record<string, string>
}

/** A topic as kcat reads it (readTopicWithKcat); the ingress never writes a record without a value. */
export async function readTopic(brokers: string, topic: string): Promise<TopicRecord[]> {
  return (await readTopicWithKcat(brokers, topic)).map((record) => {
    if (record.value === null) throw new Error(`${topic}[${record.partition}]@${record.offset} has no value`)
    return { ...record, value: record.value }
  })
}
