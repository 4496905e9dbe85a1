import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCode } from '../protocol/error-codes.ts'
import { PartitionLog } from './partition-log.ts'

export interface Topic {
  name: string
  topicId: Buffer
  partitions: PartitionLog[]
  /** Per-topic overrides of the broker's settings (CreateTopics configs, AlterConfigs). */
  configs: Map<string, string>
}

// The topic configs this broker stores. Values are checked; the retention ones apply to the topic's log.
const TOPIC_CONFIGS: Record<string, (value: string) => boolean> = {
  'retention.ms': (v) => /^-?\d+$/.test(v) && Number(v) >= -1,
  'retention.bytes': (v) => /^-?\d+$/.test(v) && Number(v) >= -1,
  'min.insync.replicas': (v) => /^\d+$/.test(v) && Number(v) >= 1,
  'cleanup.policy': (v) => v === 'delete',
}

/** null when every entry is a known config with a valid value, else the reason. */
export function invalidTopicConfig(configs: Iterable<[string, string | null]>): string | null {
  for (const [name, value] of configs) {
    const check = TOPIC_CONFIGS[name]
    if (check === undefined)
      return `unsupported topic config '${name.slice(0, 100)}' (${Object.keys(TOPIC_CONFIGS).join(', ')})`
    if (value === null || !check(value)) return `invalid value for topic config '${name}'`
  }
  return null
}

export interface TopicStoreOptions {
  // null keeps everything in memory.
  dataDir: string | null
  segmentBytes: number
  fsync: boolean
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: object) => void
}

const LEGAL_NAME = /^[a-zA-Z0-9._-]{1,249}$/
export const MAX_PARTITIONS = 1000

export function isValidTopicName(name: string): boolean {
  return LEGAL_NAME.test(name) && name !== '.' && name !== '..'
}

// All topics of the broker. On disk: <dataDir>/topics/<name>/topic.json (partition count, id) and one
// directory per partition with its segments.
export class TopicStore {
  readonly topics = new Map<string, Topic>()
  private readonly opts: TopicStoreOptions

  constructor(opts: TopicStoreOptions) {
    this.opts = opts
  }

  private topicDir(name: string): string | null {
    return this.opts.dataDir === null ? null : join(this.opts.dataDir, 'topics', name)
  }

  load(): void {
    if (this.opts.dataDir === null) return
    const root = join(this.opts.dataDir, 'topics')
    mkdirSync(root, { recursive: true })
    for (const name of readdirSync(root)) {
      const metaPath = join(root, name, 'topic.json')
      if (!existsSync(metaPath)) {
        // A topic whose creation never finished, or whose deletion was interrupted.
        rmSync(join(root, name), { recursive: true, force: true })
        continue
      }
      const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as {
        name: string
        partitions: number
        topicId: string
        configs?: Record<string, string>
      }
      const topic = this.instantiate(meta.name, meta.partitions, Buffer.from(meta.topicId, 'hex'))
      for (const [k, v] of Object.entries(meta.configs ?? {})) topic.configs.set(k, v)
      for (const p of topic.partitions) {
        const reports = p.open()
        const truncated = reports.reduce((n, r) => n + r.truncatedBytes, 0)
        if (truncated > 0) {
          this.opts.log('warn', 'truncated a torn log tail', { topic: name, partition: p.partition, bytes: truncated })
        }
      }
      this.topics.set(meta.name, topic)
    }
  }

  private instantiate(name: string, partitions: number, topicId: Buffer): Topic {
    const dir = this.topicDir(name)
    const logs: PartitionLog[] = []
    for (let i = 0; i < partitions; i++) {
      logs.push(
        new PartitionLog(name, i, {
          dir: dir === null ? null : join(dir, String(i)),
          segmentBytes: this.opts.segmentBytes,
          fsync: this.opts.fsync,
        }),
      )
    }
    return { name, topicId, partitions: logs, configs: new Map() }
  }

  // topic.json appears (or is replaced) atomically: its presence marks a complete topic.
  private writeMeta(topic: Topic): void {
    const dir = this.topicDir(topic.name)
    if (dir === null) return
    const meta = JSON.stringify({
      name: topic.name,
      partitions: topic.partitions.length,
      topicId: topic.topicId.toString('hex'),
      configs: Object.fromEntries(topic.configs),
    })
    writeFileSync(join(dir, 'topic.json.tmp'), meta)
    renameSync(join(dir, 'topic.json.tmp'), join(dir, 'topic.json'))
  }

  /** Replaces a topic's config overrides (AlterConfigs semantics); validate with invalidTopicConfig first. */
  setConfigs(name: string, configs: ReadonlyMap<string, string>): number {
    const topic = this.topics.get(name)
    if (topic === undefined) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    topic.configs = new Map(configs)
    this.writeMeta(topic)
    this.opts.log('info', 'topic configs set', { topic: name, configs: Object.fromEntries(configs) })
    return ErrorCode.NONE
  }

  create(name: string, partitions: number, configs: ReadonlyMap<string, string> = new Map()): number {
    if (!isValidTopicName(name)) return ErrorCode.INVALID_TOPIC_EXCEPTION
    if (this.topics.has(name)) return ErrorCode.TOPIC_ALREADY_EXISTS
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
      return ErrorCode.INVALID_PARTITIONS
    }
    const topic = this.instantiate(name, partitions, randomBytes(16))
    topic.configs = new Map(configs)
    const dir = this.topicDir(name)
    if (dir !== null) {
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
    }
    for (const p of topic.partitions) p.open()
    this.writeMeta(topic)
    this.topics.set(name, topic)
    this.opts.log('info', 'created topic', { topic: name, partitions })
    return ErrorCode.NONE
  }

  delete(name: string): number {
    const topic = this.topics.get(name)
    if (topic === undefined) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    this.topics.delete(name)
    const dir = this.topicDir(name)
    if (dir !== null) rmSync(join(dir, 'topic.json'), { force: true })
    for (const p of topic.partitions) p.remove()
    if (dir !== null) rmSync(dir, { recursive: true, force: true })
    this.opts.log('info', 'deleted topic', { topic: name })
    return ErrorCode.NONE
  }

  partition(topic: string, partition: number): PartitionLog | undefined {
    return this.topics.get(topic)?.partitions[partition]
  }

  flushIndexes(): void {
    for (const t of this.topics.values()) for (const p of t.partitions) p.flushIndex()
  }

  applyRetention(now: number, retentionMs: number, retentionBytes: number): void {
    for (const t of this.topics.values()) {
      const ms = t.configs.has('retention.ms') ? Number(t.configs.get('retention.ms')) : retentionMs
      const bytes = t.configs.has('retention.bytes') ? Number(t.configs.get('retention.bytes')) : retentionBytes
      for (const p of t.partitions) {
        const removed = p.applyRetention(now, ms, bytes)
        if (removed > 0) {
          this.opts.log('info', 'retention removed segments', {
            topic: t.name,
            partition: p.partition,
            segments: removed,
            logStartOffset: p.logStartOffset,
          })
        }
      }
    }
  }

  close(): void {
    for (const t of this.topics.values()) for (const p of t.partitions) p.close()
  }
}
