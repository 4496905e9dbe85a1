import { appendFileSync, mkdtempSync, readdirSync, statSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { crc32c } from '../src/protocol/crc32c.ts'
import { inspectBatch } from '../src/protocol/record-batch.ts'
import { PartitionLog } from '../src/storage/partition-log.ts'
import { TopicStore } from '../src/storage/topic-store.ts'
import { buildBatch, countRecords } from '../src/protocol/record-batch-builder.ts'

const noLog = (): void => {}

function batchOf(values: string[], timestamp = Date.now()) {
  const info = inspectBatch(
    buildBatch(
      values.map((v) => ({ key: null, value: Buffer.from(v) })),
      { timestamp },
    ),
  )
  if (info === null) throw new Error('test batch invalid')
  return info
}

function openLog(dir: string | null, segmentBytes = 1024 * 1024): PartitionLog {
  const log = new PartitionLog('t', 0, { dir, segmentBytes, fsync: false })
  log.open()
  return log
}

describe('partition log storage', () => {
  it.each([
    ['on disk', () => mkdtempSync(join(tmpdir(), 'lk-seg-'))],
    ['in memory', () => null],
  ])('rolls segments and reads whole batches across them (%s)', (_name, makeDir) => {
    const log = openLog(makeDir(), 400)
    for (let i = 0; i < 20; i++) log.append(batchOf([`a${i}`, `b${i}`]))
    expect(log.segments.length).toBeGreaterThan(3)
    expect(log.highWatermark).toBe(40)
    // From the middle of a batch: that whole batch comes back (clients skip the earlier records).
    const r = log.read(7, 10_000, true)
    const parsed = countRecords(Buffer.concat(r.records))
    expect(parsed.baseOffsets[0]).toBe(6)
    expect(parsed.records).toBe(34)
    // Byte limit: whole batches only, but at least one.
    const one = log.read(0, 1, true)
    expect(countRecords(Buffer.concat(one.records)).batches).toBe(1)
    expect(log.read(0, 1, false).records).toEqual([])
    expect(log.read(41, 100, true).errorCode).toBe(1)
    log.close()
  })

  it('recovers after a restart and truncates a torn or corrupt tail', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-rec-'))
    const log = openLog(dir)
    for (let i = 0; i < 5; i++) log.append(batchOf([`v${i}`]))
    log.close()
    const file = join(
      dir,
      readdirSync(dir).find((f) => f.endsWith('.log'))!,
    )
    const good = statSync(file).size
    // Corrupt last batch (bit flip inside the CRC-covered area) plus a partial one after it.
    const bad = buildBatch([{ key: null, value: Buffer.from('bad') }])
    bad.writeBigInt64BE(5n, 0)
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1)
    appendFileSync(file, bad)
    appendFileSync(file, buildBatch([{ key: null, value: Buffer.from('partial') }]).subarray(0, 30))
    // The lazily written index may lag behind the log; drop it to prove the log alone is enough.
    truncateSync(
      join(
        dir,
        readdirSync(dir).find((f) => f.endsWith('.index'))!,
      ),
      0,
    )

    const again = openLog(dir)
    expect(again.highWatermark).toBe(5)
    expect(statSync(file).size).toBe(good)
    expect(again.append(batchOf(['next'])).baseOffset).toBe(5)
    again.close()
  })

  it('applies retention by size and age to whole old segments and advances the log start offset', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-ret-'))
    const log = openLog(dir, 300)
    const old = Date.now() - 3_600_000
    for (let i = 0; i < 10; i++) log.append(batchOf([`old${i}`], old))
    for (let i = 0; i < 10; i++) log.append(batchOf([`new${i}`]))
    const segmentsBefore = log.segments.length
    // Age: everything older than 10 minutes goes, but never the active segment.
    log.applyRetention(Date.now(), 600_000, -1)
    // Segments holding only old batches are gone; the one where new batches begin stays whole.
    expect(log.logStartOffset).toBeGreaterThan(0)
    expect(log.logStartOffset).toBeLessThanOrEqual(10)
    expect(log.segments[0]!.index.largestTimestamp).toBeGreaterThan(Date.now() - 600_000)
    expect(log.segments.length).toBeLessThan(segmentsBefore)
    expect(log.read(0, 1000, true).errorCode).toBe(1)
    // Size: keep at most ~one segment.
    log.applyRetention(Date.now(), -1, 1)
    expect(log.segments.length).toBe(1)
    expect(log.highWatermark).toBe(20)
    expect(readdirSync(dir).filter((f) => f.endsWith('.log'))).toHaveLength(1)
    log.close()
  })

  it('finds the exact record offset by timestamp inside an uncompressed batch', () => {
    const log = openLog(null)
    log.append(batchOf(['x'], 50))
    // Records at 100, 200 and 300 in one batch (offsets 1, 2, 3).
    log.append(inspectBatch(buildBatchWithDeltas([0, 100, 200], 100))!)
    expect(log.offsetForTimestamp(150)).toEqual({ offset: 2, timestamp: 200 })
    expect(log.offsetForTimestamp(300)).toEqual({ offset: 3, timestamp: 300 })
  })

  it('finds offsets by timestamp', () => {
    const log = openLog(null)
    log.append(batchOf(['a', 'b'], 1000))
    log.append(batchOf(['c'], 2000))
    log.append(batchOf(['d'], 3000))
    expect(log.offsetForTimestamp(1500)).toEqual({ offset: 2, timestamp: 2000 })
    expect(log.offsetForTimestamp(0)).toEqual({ offset: 0, timestamp: 1000 })
    expect(log.offsetForTimestamp(5000)).toBeNull()
  })

  it('persists topics and their partition counts; deleting removes the files', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lk-topics-'))
    const store = new TopicStore({ dataDir, segmentBytes: 1 << 20, fsync: false, log: noLog })
    store.load()
    expect(store.create('orders', 3)).toBe(0)
    expect(store.create('orders', 3)).toBe(36)
    expect(store.create('bad/name', 1)).toBe(17)
    expect(store.create('gone', 1)).toBe(0)
    store.partition('orders', 2)!.append(batchOf(['x']))
    expect(store.delete('gone')).toBe(0)
    store.close()

    const reopened = new TopicStore({ dataDir, segmentBytes: 1 << 20, fsync: false, log: noLog })
    reopened.load()
    expect([...reopened.topics.keys()]).toEqual(['orders'])
    expect(reopened.topics.get('orders')!.partitions).toHaveLength(3)
    expect(reopened.partition('orders', 2)!.highWatermark).toBe(1)
    expect(readdirSync(join(dataDir, 'topics'))).toEqual(['orders'])
    reopened.close()
  })
})

// A batch whose records carry the given timestamp deltas (buildBatch gives every record delta 0).
function buildBatchWithDeltas(deltas: number[], baseTimestamp: number): Buffer {
  const zigzag = (n: number): number[] => {
    let z = n >= 0 ? n * 2 : -n * 2 - 1
    const out: number[] = []
    while (z >= 0x80) {
      out.push((z & 0x7f) | 0x80)
      z = Math.floor(z / 128)
    }
    out.push(z)
    return out
  }
  const bodies = deltas.map((d, i) => {
    const inner = Buffer.from([0, ...zigzag(d), ...zigzag(i), ...zigzag(-1), ...zigzag(1), 0x61, ...zigzag(0)])
    return Buffer.concat([Buffer.from(zigzag(inner.length)), inner])
  })
  const template = buildBatch(
    deltas.map(() => ({ key: null, value: Buffer.from('a') })),
    { timestamp: baseTimestamp },
  )
  const batch = Buffer.concat([template.subarray(0, 61), ...bodies])
  batch.writeInt32BE(batch.length - 12, 8)
  batch.writeBigInt64BE(BigInt(baseTimestamp + Math.max(...deltas)), 35)
  batch.writeUInt32BE(crc32c(batch.subarray(21)), 17)
  return batch
}
