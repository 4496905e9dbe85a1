import { mkdirSync, readdirSync } from 'node:fs'
import { ErrorCode } from '../protocol/error-codes.ts'
import { Reader } from '../protocol/reader.ts'
import { type BatchInfo, inspectBatch, patchBatch } from '../protocol/record-batch.ts'
import { FileSegment, type RecoveryReport } from './file-segment.ts'
import { MemorySegment } from './memory-segment.ts'
import { type Segment } from './segment.ts'

export interface LogOptions {
  dir: string | null
  segmentBytes: number
  fsync: boolean
}

interface SequenceEntry {
  firstSeq: number
  lastSeq: number
  baseOffset: number
}

interface ProducerState {
  epoch: number
  batches: SequenceEntry[]
}

export interface AppendResult {
  errorCode: number
  baseOffset: number
}

export interface ReadResult {
  errorCode: number
  records: Buffer[]
  bytes: number
}

// Kafka keeps this many recent batches per producer and partition to recognise retried duplicates.
const PRODUCER_WINDOW = 5
const SEQ_MODULO = 2 ** 31
const PRODUCER_RESTORE_BATCHES = 2000

export class PartitionLog {
  readonly topic: string
  readonly partition: number
  segments: Segment[] = []
  nextOffset = 0
  private readonly opts: LogOptions
  private readonly producers = new Map<number, ProducerState>()
  // Parked fetches waiting for data on this partition; called with the appended byte count.
  readonly watchers = new Set<(bytes: number) => void>()

  constructor(topic: string, partition: number, opts: LogOptions) {
    this.topic = topic
    this.partition = partition
    this.opts = opts
  }

  get logStartOffset(): number {
    return this.segments[0]!.baseOffset
  }

  get highWatermark(): number {
    return this.nextOffset
  }

  get sizeBytes(): number {
    let n = 0
    for (const s of this.segments) n += s.size
    return n
  }

  open(): RecoveryReport[] {
    const reports: RecoveryReport[] = []
    const dir = this.opts.dir
    if (dir === null) {
      this.segments = [new MemorySegment(0)]
      return reports
    }
    mkdirSync(dir, { recursive: true })
    const bases = readdirSync(dir)
      .filter((n) => n.endsWith('.log'))
      .map((n) => Number(n.slice(0, -4)))
      .filter((n) => Number.isSafeInteger(n))
      .sort((a, b) => a - b)
    for (const base of bases) {
      const { segment, report } = FileSegment.open(dir, base)
      this.segments.push(segment)
      reports.push(report)
    }
    if (this.segments.length === 0) this.segments.push(FileSegment.create(dir, 0))
    const last = this.segments[this.segments.length - 1]!
    const ix = last.index
    this.nextOffset = ix.count > 0 ? ix.lastOffsets[ix.count - 1]! + 1 : last.baseOffset
    this.restoreProducerState(last)
    return reports
  }

  // Idempotent producers' sequence windows are rebuilt from the newest batches of the log, so a batch
  // retried across a broker restart is still recognised as a duplicate.
  private restoreProducerState(seg: Segment): void {
    const ix = seg.index
    const from = Math.max(0, ix.count - PRODUCER_RESTORE_BATCHES)
    if (from >= ix.count) return
    const data = Buffer.concat(seg.read(from, ix.count))
    let pos = 0
    for (let i = from; i < ix.count; i++) {
      const size = ix.sizes[i]!
      const info = inspectBatch(data.subarray(pos, pos + size))
      if (info !== null) this.recordSequence(info, ix.baseOffsets[i]!)
      pos += size
    }
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!
  }

  // Idempotent producers: a retried batch returns its original offset, a gap is an error.
  private checkSequence(b: BatchInfo): AppendResult | null {
    if (b.producerId < 0) return null
    const state = this.producers.get(b.producerId)
    if (state === undefined) return null
    if (b.producerEpoch < state.epoch) return { errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, baseOffset: -1 }
    if (b.producerEpoch > state.epoch) {
      return b.baseSequence === 0 ? null : { errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, baseOffset: -1 }
    }
    const lastSeq = (b.baseSequence + b.lastOffsetDelta) % SEQ_MODULO
    for (const e of state.batches) {
      if (e.firstSeq === b.baseSequence && e.lastSeq === lastSeq) return { errorCode: 0, baseOffset: e.baseOffset }
    }
    const tail = state.batches[state.batches.length - 1]
    if (tail !== undefined && b.baseSequence !== (tail.lastSeq + 1) % SEQ_MODULO) {
      return { errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, baseOffset: -1 }
    }
    return null
  }

  private recordSequence(b: BatchInfo, baseOffset: number): void {
    if (b.producerId < 0) return
    let state = this.producers.get(b.producerId)
    if (state === undefined || state.epoch !== b.producerEpoch) {
      state = { epoch: b.producerEpoch, batches: [] }
      this.producers.set(b.producerId, state)
    }
    state.batches.push({
      firstSeq: b.baseSequence,
      lastSeq: (b.baseSequence + b.lastOffsetDelta) % SEQ_MODULO,
      baseOffset,
    })
    if (state.batches.length > PRODUCER_WINDOW) state.batches.shift()
  }

  append(b: BatchInfo): AppendResult {
    const seq = this.checkSequence(b)
    if (seq !== null) return seq
    const baseOffset = this.nextOffset
    const lastOffset = baseOffset + b.lastOffsetDelta
    patchBatch(b.buf, baseOffset, 0)
    if (this.active.size > 0 && this.active.size + b.buf.length > this.opts.segmentBytes) this.roll()
    this.active.append(b.buf, baseOffset, lastOffset, b.maxTimestamp)
    this.nextOffset = lastOffset + 1
    this.recordSequence(b, baseOffset)
    return { errorCode: 0, baseOffset }
  }

  // Wakes parked fetches once per produce request rather than once per batch.
  notify(bytes: number): void {
    for (const w of [...this.watchers]) w(bytes)
  }

  sync(): void {
    if (this.opts.fsync) this.active.sync()
  }

  private roll(): void {
    this.active.flushIndex()
    const dir = this.opts.dir
    this.segments.push(dir === null ? new MemorySegment(this.nextOffset) : FileSegment.create(dir, this.nextOffset))
  }

  private segmentFor(offset: number): number {
    let lo = 0
    let hi = this.segments.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (this.segments[mid]!.baseOffset <= offset) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  // Whole batches from fetchOffset on, up to maxBytes; at least one batch when mustReturnOne (KIP-74).
  read(fetchOffset: number, maxBytes: number, mustReturnOne: boolean): ReadResult {
    if (fetchOffset < this.logStartOffset || fetchOffset > this.nextOffset) {
      return { errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, records: [], bytes: 0 }
    }
    const records: Buffer[] = []
    let bytes = 0
    if (fetchOffset === this.nextOffset) return { errorCode: 0, records, bytes }
    for (let s = this.segmentFor(fetchOffset); s < this.segments.length; s++) {
      const seg = this.segments[s]!
      const ix = seg.index
      const from = ix.findOffset(fetchOffset)
      let to = from
      while (to < ix.count) {
        const size = ix.sizes[to]!
        if (bytes + size > maxBytes && !(mustReturnOne && bytes === 0)) break
        bytes += size
        to++
      }
      if (to > from) records.push(...seg.read(from, to))
      if (to < ix.count) break
    }
    return { errorCode: 0, records, bytes }
  }

  // Bytes a fetch at fetchOffset could return now, capped at limit; no I/O.
  available(fetchOffset: number, limit: number): number {
    if (fetchOffset < this.logStartOffset || fetchOffset >= this.nextOffset) return 0
    let bytes = 0
    for (let s = this.segmentFor(fetchOffset); s < this.segments.length && bytes < limit; s++) {
      const seg = this.segments[s]!
      const from = seg.index.findOffset(fetchOffset)
      bytes += from < seg.index.count ? seg.size - seg.index.positions[from]! : 0
    }
    return Math.min(bytes, limit)
  }

  // First offset whose timestamp is >= ts, and that timestamp. The index finds the batch; inside an
  // uncompressed batch the records are walked for the exact offset, a compressed batch answers with its
  // base offset (the broker never decompresses).
  offsetForTimestamp(ts: number): { offset: number; timestamp: number } | null {
    for (const seg of this.segments) {
      const i = seg.index.findTimestamp(ts)
      if (i >= seg.index.count) continue
      const base = seg.index.baseOffsets[i]!
      const exact = firstRecordAtOrAfter(seg.read(i, i + 1)[0]!, ts)
      const hit = exact ?? { delta: 0, timestamp: seg.index.timestamps[i]! }
      return { offset: Math.max(base + hit.delta, this.logStartOffset), timestamp: hit.timestamp }
    }
    return null
  }

  // Deletes whole old segments (never the active one) past the size or age limit; -1 disables a limit.
  applyRetention(now: number, retentionMs: number, retentionBytes: number): number {
    let removed = 0
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!
      const tooOld =
        retentionMs >= 0 && oldest.index.largestTimestamp >= 0 && now - oldest.index.largestTimestamp > retentionMs
      const tooBig = retentionBytes >= 0 && this.sizeBytes - oldest.size >= retentionBytes
      if (!tooOld && !tooBig) break
      this.segments.shift()
      oldest.remove()
      removed++
    }
    return removed
  }

  flushIndex(): void {
    this.active.flushIndex()
  }

  close(): void {
    for (const s of this.segments) s.close()
    for (const w of [...this.watchers]) w(0)
  }

  remove(): void {
    for (const s of this.segments) s.remove()
    this.segments = [new MemorySegment(this.nextOffset)]
    for (const w of [...this.watchers]) w(0)
  }
}

function firstRecordAtOrAfter(batch: Buffer, ts: number): { delta: number; timestamp: number } | null {
  if ((batch.readInt16BE(21) & 0x07) !== 0) return null
  const baseTimestamp = batch.readInt32BE(27) * 4294967296 + batch.readUInt32BE(31)
  const r = new Reader(batch, 61)
  try {
    while (r.remaining() > 0) {
      const length = r.varint()
      const end = r.pos + length
      r.int8()
      const timestamp = baseTimestamp + r.varint()
      const delta = r.varint()
      if (timestamp >= ts) return { delta, timestamp }
      r.pos = end
    }
  } catch {
    return null
  }
  return null
}
