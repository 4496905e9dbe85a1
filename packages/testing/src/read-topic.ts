import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface TopicRecord {
  topic: string
  partition: number
  offset: number
  key: string | null
  /** null for a record without a value (a tombstone). */
  value: string | null
  headers: Record<string, string>
}

/**
 * Reads a topic from the beginning to its current end with kcat (librdkafka): an independent client, so
 * what a service claims to have produced is checked against what the broker really holds.
 */
export async function readTopicWithKcat(brokers: string, topic: string): Promise<TopicRecord[]> {
  const { stdout } = await run('kcat', ['-C', '-b', brokers, '-t', topic, '-o', 'beginning', '-e', '-q', '-J'], {
    maxBuffer: 512 * 1024 * 1024,
    timeout: 60_000,
  })
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const raw = JSON.parse(line) as {
        topic: string
        partition: number
        offset: number
        key: string | null
        payload: string | null
        headers?: string[]
      }
      const headers: Record<string, string> = {}
      const list = raw.headers ?? []
      for (let i = 0; i + 1 < list.length; i += 2) headers[list[i]!] = list[i + 1]!
      return {
        topic: raw.topic,
        partition: raw.partition,
        offset: raw.offset,
        key: raw.key,
        value: raw.payload,
        headers,
      }
    })
}
