import { crc32c } from './crc32c.ts'

export interface TestRecord {
  key: Buffer | null
  value: Buffer | null
  headers?: [string, Buffer][]
}

function zigzag(n: number): number[] {
  let z = n >= 0 ? n * 2 : -n * 2 - 1
  const out: number[] = []
  while (z >= 0x80) {
    out.push((z & 0x7f) | 0x80)
    z = Math.floor(z / 128)
  }
  out.push(z)
  return out
}

function bytesField(b: Buffer | null): Buffer {
  return b === null ? Buffer.from(zigzag(-1)) : Buffer.concat([Buffer.from(zigzag(b.length)), b])
}

// An uncompressed record batch v2 as a producer would send it (baseOffset 0), for raw-protocol tests and
// the benchmark's pre-encoded produce requests.
export function buildBatch(
  records: TestRecord[],
  opts: { producerId?: number; producerEpoch?: number; baseSequence?: number; timestamp?: number } = {},
): Buffer {
  const ts = opts.timestamp ?? Date.now()
  const bodies = records.map((r, i) => {
    const headers = r.headers ?? []
    const inner = Buffer.concat([
      Buffer.from([0]),
      Buffer.from(zigzag(0)),
      Buffer.from(zigzag(i)),
      bytesField(r.key),
      bytesField(r.value),
      Buffer.from(zigzag(headers.length)),
      ...headers.flatMap(([k, v]) => [bytesField(Buffer.from(k)), bytesField(v)]),
    ])
    return Buffer.concat([Buffer.from(zigzag(inner.length)), inner])
  })
  const recordsBuf = Buffer.concat(bodies)
  const batch = Buffer.alloc(61 + recordsBuf.length)
  batch.writeBigInt64BE(0n, 0)
  batch.writeInt32BE(batch.length - 12, 8)
  batch.writeInt32BE(-1, 12)
  batch.writeInt8(2, 16)
  batch.writeInt16BE(0, 21)
  batch.writeInt32BE(records.length - 1, 23)
  batch.writeBigInt64BE(BigInt(ts), 27)
  batch.writeBigInt64BE(BigInt(ts), 35)
  batch.writeBigInt64BE(BigInt(opts.producerId ?? -1), 43)
  batch.writeInt16BE(opts.producerEpoch ?? -1, 51)
  batch.writeInt32BE(opts.baseSequence ?? -1, 53)
  batch.writeInt32BE(records.length, 57)
  recordsBuf.copy(batch, 61)
  batch.writeUInt32BE(crc32c(batch.subarray(21)), 17)
  return batch
}

// Count of records in a fetched record set (sum of the batch headers' recordsCount).
export function countRecords(records: Buffer): { batches: number; records: number; baseOffsets: number[] } {
  let pos = 0
  let batches = 0
  let count = 0
  const baseOffsets: number[] = []
  while (pos + 61 <= records.length) {
    const size = records.readInt32BE(pos + 8) + 12
    if (pos + size > records.length) break
    baseOffsets.push(Number(records.readBigInt64BE(pos)))
    count += records.readInt32BE(pos + 57)
    batches++
    pos += size
  }
  return { batches, records: count, baseOffsets }
}
