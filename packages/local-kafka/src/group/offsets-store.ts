import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32c } from '@node-rs/crc32'

// Committed group offsets. With a data dir they live in an append-only log, one line per commit request:
//   <crc32c of the JSON, 8 hex digits> <JSON>\n
// Load replays the log, cuts a torn or corrupt tail (a kill -9 can only tear the last append) and rewrites
// the log compacted (write to a temporary file, fsync, rename) when it holds superseded records.
// A commit resolves only after its line was written, and the in-memory view changes only then, so a fetch
// never shows an offset that a crash could still lose. Writes are not fsynced: like Kafka's default, a
// process crash loses nothing, a machine crash may lose the last commits.

export interface CommittedOffset {
  offset: number
  leaderEpoch: number
  metadata: string
  commitTimestamp: number
}

export interface OffsetCommitEntry {
  topic: string
  partition: number
  offset: number
  leaderEpoch: number
  metadata: string
}

type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: object) => void

// [topic, partition, offset, leaderEpoch, metadata, commitTimestamp]
type EntryTuple = [string, number, number, number, string, number]
type LogRecord = { g: string; o: EntryTuple[] } | { g: string; del: true }

interface PendingWrite {
  line: Buffer
  apply: () => void
  resolve: () => void
  reject: (err: unknown) => void
}

const FILE_NAME = 'group-offsets.log'
// Compact at runtime once the log holds this many records and mostly superseded ones.
const COMPACT_MIN_RECORDS = 10_000
const COMPACT_RATIO = 4

export class OffsetsStore {
  readonly #dataDir: string | undefined
  readonly #log: LogFn
  readonly #offsets = new Map<string, Map<string, Map<number, CommittedOffset>>>()
  #file: FileHandle | undefined
  #size = 0
  #records = 0
  #queue: PendingWrite[] = []
  #writing: Promise<void> | undefined
  #closed = false
  readonly #compactMinRecords: number

  constructor(opts: { dataDir?: string | undefined; log: LogFn; compactMinRecords?: number }) {
    this.#dataDir = opts.dataDir
    this.#log = opts.log
    this.#compactMinRecords = opts.compactMinRecords ?? COMPACT_MIN_RECORDS
  }

  get #path(): string {
    return join(this.#dataDir ?? '', FILE_NAME)
  }

  async load(): Promise<void> {
    if (this.#dataDir === undefined) return
    await mkdir(this.#dataDir, { recursive: true })
    let data: Buffer
    try {
      data = await readFile(this.#path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      data = Buffer.alloc(0)
    }
    let pos = 0
    let records = 0
    while (pos < data.length) {
      const end = data.indexOf(0x0a, pos)
      if (end < 0) break
      const record = parseLine(data.subarray(pos, end))
      if (record === undefined) break
      this.#apply(record)
      records++
      pos = end + 1
    }
    if (pos < data.length) {
      this.#log('warn', 'group offsets log: dropping a torn or corrupt tail', {
        path: this.#path,
        validBytes: pos,
        droppedBytes: data.length - pos,
      })
    }
    this.#records = records
    if (pos < data.length || records > this.#liveRecordCount()) {
      await this.#rewriteCompacted()
    } else {
      this.#file = await open(this.#path, 'a')
      this.#size = pos
    }
    this.#log('info', 'group offsets loaded', { groups: this.#offsets.size, records })
  }

  groupIds(): string[] {
    return [...this.#offsets.keys()]
  }

  /** topic → partition → offset, or undefined when the group has nothing committed. */
  groupOffsets(groupId: string): ReadonlyMap<string, ReadonlyMap<number, CommittedOffset>> | undefined {
    return this.#offsets.get(groupId)
  }

  get(groupId: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.#offsets.get(groupId)?.get(topic)?.get(partition)
  }

  commit(groupId: string, entries: OffsetCommitEntry[], commitTimestamp: number): Promise<void> {
    const tuples: EntryTuple[] = entries.map((e) => [
      e.topic,
      e.partition,
      e.offset,
      e.leaderEpoch,
      e.metadata,
      commitTimestamp,
    ])
    return this.#write({ g: groupId, o: tuples })
  }

  // Written even when nothing is applied yet: a commit of this group may still be in the write queue.
  deleteGroup(groupId: string): Promise<void> {
    return this.#write({ g: groupId, del: true })
  }

  async close(): Promise<void> {
    this.#closed = true
    while (this.#writing) await this.#writing
    await this.#file?.close()
    this.#file = undefined
  }

  #write(record: LogRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('offsets store is closed'))
    if (this.#dataDir === undefined) {
      this.#apply(record)
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ line: encodeLine(record), apply: () => this.#apply(record), resolve, reject })
      this.#writing ??= this.#drain().finally(() => {
        this.#writing = undefined
      })
    })
  }

  // Commits that arrive while a write is in flight go out together in the next write.
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0)
      const bytes = Buffer.concat(batch.map((w) => w.line))
      try {
        if (!this.#file) throw new Error('offsets store is not loaded')
        await this.#file.appendFile(bytes)
        this.#size += bytes.length
        this.#records += batch.length
      } catch (err) {
        this.#log('error', 'group offsets write failed', { err: String(err) })
        // A partial line would glue itself to the next append; cut back to the last whole record.
        await this.#file?.truncate(this.#size).catch(() => undefined)
        for (const w of batch) w.reject(err)
        continue
      }
      for (const w of batch) {
        w.apply()
        w.resolve()
      }
      if (this.#records >= this.#compactMinRecords && this.#records > COMPACT_RATIO * this.#liveRecordCount()) {
        await this.#rewriteCompacted().catch((err: unknown) => {
          this.#log('error', 'group offsets compaction failed', { err: String(err) })
        })
      }
    }
  }

  #apply(record: LogRecord): void {
    if ('del' in record) {
      this.#offsets.delete(record.g)
      return
    }
    let topics = this.#offsets.get(record.g)
    if (!topics) {
      topics = new Map()
      this.#offsets.set(record.g, topics)
    }
    for (const [topic, partition, offset, leaderEpoch, metadata, commitTimestamp] of record.o) {
      let partitions = topics.get(topic)
      if (!partitions) {
        partitions = new Map()
        topics.set(topic, partitions)
      }
      partitions.set(partition, { offset, leaderEpoch, metadata, commitTimestamp })
    }
  }

  // The compacted log holds one record per group.
  #liveRecordCount(): number {
    return this.#offsets.size
  }

  async #rewriteCompacted(): Promise<void> {
    const tmpPath = `${this.#path}.tmp`
    const lines: Buffer[] = []
    for (const [groupId, topics] of this.#offsets) {
      const tuples: EntryTuple[] = []
      for (const [topic, partitions] of topics) {
        for (const [partition, c] of partitions) {
          tuples.push([topic, partition, c.offset, c.leaderEpoch, c.metadata, c.commitTimestamp])
        }
      }
      lines.push(encodeLine({ g: groupId, o: tuples }))
    }
    const bytes = Buffer.concat(lines)
    const tmp = await open(tmpPath, 'w')
    try {
      await tmp.writeFile(bytes)
      await tmp.sync()
    } finally {
      await tmp.close()
    }
    await this.#file?.close()
    this.#file = undefined
    await rename(tmpPath, this.#path)
    await syncDir(this.#dataDir ?? '.')
    this.#file = await open(this.#path, 'a')
    this.#size = bytes.length
    this.#records = lines.length
  }
}

function encodeLine(record: LogRecord): Buffer {
  const json = JSON.stringify(record)
  const crc = crc32c(json).toString(16).padStart(8, '0')
  return Buffer.from(`${crc} ${json}\n`)
}

function parseLine(line: Buffer): LogRecord | undefined {
  if (line.length < 10 || line[8] !== 0x20) return undefined
  const json = line.subarray(9)
  const crc = Number.parseInt(line.subarray(0, 8).toString('latin1'), 16)
  if (!Number.isFinite(crc) || crc !== crc32c(json)) return undefined
  try {
    const record = JSON.parse(json.toString('utf8')) as unknown
    return isLogRecord(record) ? record : undefined
  } catch {
    return undefined
  }
}

function isLogRecord(value: unknown): value is LogRecord {
  if (typeof value !== 'object' || value === null) return false
  const r = value as Record<string, unknown>
  if (typeof r.g !== 'string') return false
  if (r.del === true) return true
  return (
    Array.isArray(r.o) &&
    r.o.every(
      (t) =>
        Array.isArray(t) &&
        t.length === 6 &&
        typeof t[0] === 'string' &&
        typeof t[1] === 'number' &&
        typeof t[2] === 'number' &&
        typeof t[3] === 'number' &&
        typeof t[4] === 'string' &&
        typeof t[5] === 'number',
    )
  )
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
