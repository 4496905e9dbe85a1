import { crc32c } from './crc32c.ts'

// Record batch v2 header offsets (see the spec's table). baseOffset and partitionLeaderEpoch lie outside
// the CRC, which covers [21, end): the broker patches them in place and never recomputes the CRC.
const BATCH_HEADER_SIZE = 61
const LENGTH_OFFSET = 8
const EPOCH_OFFSET = 12
const MAGIC_OFFSET = 16
const CRC_OFFSET = 17
const ATTRIBUTES_OFFSET = 21
const LAST_OFFSET_DELTA_OFFSET = 23
const BASE_TIMESTAMP_OFFSET = 27
const MAX_TIMESTAMP_OFFSET = 35
const PRODUCER_ID_OFFSET = 43
const PRODUCER_EPOCH_OFFSET = 51
const BASE_SEQUENCE_OFFSET = 53
const RECORDS_COUNT_OFFSET = 57

export interface BatchInfo {
  buf: Buffer
  recordsCount: number
  lastOffsetDelta: number
  baseTimestamp: number
  maxTimestamp: number
  producerId: number
  producerEpoch: number
  baseSequence: number
  transactional: boolean
  logAppendTime: boolean
}

function readInt64(buf: Buffer, at: number): number {
  return buf.readInt32BE(at) * 4294967296 + buf.readUInt32BE(at + 4)
}

function writeInt64(buf: Buffer, at: number, v: number): void {
  const hi = Math.floor(v / 4294967296)
  buf.writeInt32BE(hi, at)
  buf.writeUInt32BE(v - hi * 4294967296, at + 4)
}

export class CorruptBatchError extends Error {}

// Splits a produce request's record set into batches and validates each one as Kafka does; throws
// CorruptBatchError with the reason on the first bad batch.
export function parseProducedBatches(records: Buffer): BatchInfo[] {
  const out: BatchInfo[] = []
  let pos = 0
  while (pos < records.length) {
    if (records.length - pos < BATCH_HEADER_SIZE) throw new CorruptBatchError('truncated batch header')
    const batchLength = records.readInt32BE(pos + LENGTH_OFFSET)
    const total = batchLength + 12
    if (batchLength < BATCH_HEADER_SIZE - 12 || pos + total > records.length) {
      throw new CorruptBatchError('batch length does not match the record set')
    }
    const buf = records.subarray(pos, pos + total)
    const info = inspectBatch(buf)
    if (info === null) throw new CorruptBatchError('not a valid record batch v2 (magic or CRC)')
    if (readInt64(buf, 0) !== 0) throw new CorruptBatchError('baseOffset must be 0 on produce')
    const attributes = buf.readInt16BE(ATTRIBUTES_OFFSET)
    if ((attributes & 0x20) !== 0) throw new CorruptBatchError('control batches cannot be produced')
    if ((attributes & 0x07) > 4) throw new CorruptBatchError('unknown compression codec')
    if (info.lastOffsetDelta !== info.recordsCount - 1) {
      throw new CorruptBatchError('lastOffsetDelta does not match recordsCount')
    }
    out.push(info)
    pos += total
  }
  return out
}

// Header fields of a stored or produced batch, or null if the magic or CRC is wrong. Used on produce and
// when recovering a log tail after a crash.
export function inspectBatch(buf: Buffer): BatchInfo | null {
  if (buf.length < BATCH_HEADER_SIZE || buf[MAGIC_OFFSET] !== 2) return null
  if (buf.readInt32BE(LENGTH_OFFSET) + 12 !== buf.length) return null
  if (crc32c(buf.subarray(ATTRIBUTES_OFFSET)) !== buf.readUInt32BE(CRC_OFFSET)) return null
  const attributes = buf.readInt16BE(ATTRIBUTES_OFFSET)
  return {
    buf,
    recordsCount: buf.readInt32BE(RECORDS_COUNT_OFFSET),
    lastOffsetDelta: buf.readInt32BE(LAST_OFFSET_DELTA_OFFSET),
    baseTimestamp: readInt64(buf, BASE_TIMESTAMP_OFFSET),
    maxTimestamp: readInt64(buf, MAX_TIMESTAMP_OFFSET),
    producerId: readInt64(buf, PRODUCER_ID_OFFSET),
    producerEpoch: buf.readInt16BE(PRODUCER_EPOCH_OFFSET),
    baseSequence: buf.readInt32BE(BASE_SEQUENCE_OFFSET),
    transactional: (attributes & 0x10) !== 0,
    logAppendTime: (attributes & 0x08) !== 0,
  }
}

export function readBaseOffset(buf: Buffer): number {
  return readInt64(buf, 0)
}

// Assigns the batch its place in the log; both fields are outside the CRC.
export function patchBatch(buf: Buffer, baseOffset: number, leaderEpoch: number): void {
  writeInt64(buf, 0, baseOffset)
  buf.writeInt32BE(leaderEpoch, EPOCH_OFFSET)
}
