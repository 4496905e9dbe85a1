import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { inspectBatch, readBaseOffset } from '../protocol/record-batch.ts'
import { BatchIndex } from './batch-index.ts'
import { type Segment } from './segment.ts'

// On disk: <base>.log holds the batches exactly as stored; <base>.index holds one 32-byte entry per batch
// (baseOffset f64, position f64, size i32, lastOffsetDelta i32, running max timestamp f64). The index is written lazily (it can always
// be rebuilt from the log), so recovery trusts only index entries that agree with the log and then scans
// the log from there, truncating a torn or corrupt tail.
const INDEX_ENTRY = 32

function segmentFileName(baseOffset: number, ext: string): string {
  return `${String(baseOffset).padStart(20, '0')}.${ext}`
}

export interface RecoveryReport {
  truncatedBytes: number
  scannedBatches: number
}

export class FileSegment implements Segment {
  readonly baseOffset: number
  readonly index = new BatchIndex()
  size = 0
  private readonly logPath: string
  private readonly indexPath: string
  private logFd: number
  private indexFd: number
  private pendingIndex: Buffer[] = []
  private indexedCount = 0

  private constructor(dir: string, baseOffset: number) {
    this.baseOffset = baseOffset
    this.logPath = join(dir, segmentFileName(baseOffset, 'log'))
    this.indexPath = join(dir, segmentFileName(baseOffset, 'index'))
    this.logFd = openSync(this.logPath, 'a+')
    this.indexFd = openSync(this.indexPath, 'a+')
  }

  static create(dir: string, baseOffset: number): FileSegment {
    return new FileSegment(dir, baseOffset)
  }

  static open(dir: string, baseOffset: number): { segment: FileSegment; report: RecoveryReport } {
    const s = new FileSegment(dir, baseOffset)
    return { segment: s, report: s.recover() }
  }

  private recover(): RecoveryReport {
    const logSize = fstatSync(this.logFd).size
    const indexSize = fstatSync(this.indexFd).size
    const raw = Buffer.alloc(indexSize - (indexSize % INDEX_ENTRY))
    if (raw.length > 0) readSync(this.indexFd, raw, 0, raw.length, 0)
    let pos = 0
    let expected = this.baseOffset
    for (let at = 0; at < raw.length; at += INDEX_ENTRY) {
      const base = raw.readDoubleBE(at)
      const position = raw.readDoubleBE(at + 8)
      const size = raw.readInt32BE(at + 16)
      const last = base + raw.readInt32BE(at + 20)
      const ts = raw.readDoubleBE(at + 24)
      if (base !== expected || position !== pos || size < 61 || position + size > logSize || last < base) break
      this.index.push(base, last, position, size, ts)
      pos += size
      expected = last + 1
    }
    const trusted = this.index.count
    let scanned = 0
    const head = Buffer.alloc(12)
    while (pos < logSize) {
      if (logSize - pos < 12 || readSync(this.logFd, head, 0, 12, pos) !== 12) break
      const size = head.readInt32BE(8) + 12
      if (size < 61 || pos + size > logSize) break
      const buf = Buffer.allocUnsafe(size)
      if (readSync(this.logFd, buf, 0, size, pos) !== size) break
      const info = inspectBatch(buf)
      if (info === null || readBaseOffset(buf) !== expected) break
      const last = expected + info.lastOffsetDelta
      this.index.push(expected, last, pos, size, info.maxTimestamp)
      pos += size
      expected = last + 1
      scanned++
    }
    const truncatedBytes = logSize - pos
    if (truncatedBytes > 0) ftruncateSync(this.logFd, pos)
    this.size = pos
    if (trusted * INDEX_ENTRY !== indexSize || scanned > 0) {
      // Rewrite the index from what the log proved.
      ftruncateSync(this.indexFd, 0)
      this.indexedCount = 0
      this.queueIndex(0, this.index.count)
      this.flushIndex()
    } else {
      this.indexedCount = this.index.count
    }
    return { truncatedBytes, scannedBatches: scanned }
  }

  append(buf: Buffer, baseOffset: number, lastOffset: number, maxTimestamp: number): void {
    let written = 0
    while (written < buf.length) written += writeSync(this.logFd, buf, written, buf.length - written)
    this.index.push(baseOffset, lastOffset, this.size, buf.length, maxTimestamp)
    this.size += buf.length
  }

  private queueIndex(from: number, to: number): void {
    if (to <= from) return
    const out = Buffer.allocUnsafe((to - from) * INDEX_ENTRY)
    const ix = this.index
    for (let i = from; i < to; i++) {
      const at = (i - from) * INDEX_ENTRY
      out.writeDoubleBE(ix.baseOffsets[i]!, at)
      out.writeDoubleBE(ix.positions[i]!, at + 8)
      out.writeInt32BE(ix.sizes[i]!, at + 16)
      out.writeInt32BE(ix.lastOffsets[i]! - ix.baseOffsets[i]!, at + 20)
      out.writeDoubleBE(ix.timestamps[i]!, at + 24)
    }
    this.pendingIndex.push(out)
    this.indexedCount = to
  }

  flushIndex(): void {
    this.queueIndex(this.indexedCount, this.index.count)
    if (this.pendingIndex.length === 0) return
    const all = Buffer.concat(this.pendingIndex)
    this.pendingIndex = []
    let written = 0
    while (written < all.length) written += writeSync(this.indexFd, all, written, all.length - written)
  }

  read(from: number, to: number): Buffer[] {
    if (to <= from) return []
    const ix = this.index
    const start = ix.positions[from]!
    const end = ix.positions[to - 1]! + ix.sizes[to - 1]!
    const buf = Buffer.allocUnsafe(end - start)
    let got = 0
    while (got < buf.length) {
      const n = readSync(this.logFd, buf, got, buf.length - got, start + got)
      if (n === 0) throw new Error(`short read in ${this.logPath}`)
      got += n
    }
    return [buf]
  }

  sync(): void {
    fsyncSync(this.logFd)
  }

  close(): void {
    this.flushIndex()
    closeSync(this.logFd)
    closeSync(this.indexFd)
  }

  remove(): void {
    closeSync(this.logFd)
    closeSync(this.indexFd)
    rmSync(this.logPath, { force: true })
    rmSync(this.indexPath, { force: true })
  }
}
