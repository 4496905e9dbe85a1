import { startRedis, type RedisProcess } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type MappedMessage } from '../src/actions/action.ts'
import { ChangedRows, metaKey, type ChangedRowsScope } from '../src/history/changed-rows.ts'
import { FingerprintTable } from '../src/history/fingerprint-table.ts'

// The memory side of "changed rows only": the new generation leaves the ingress a 65,536-row chunk at a time
// (written to Redis while the send runs, removed when the run does not commit), a dry run writes nothing, and the
// previous generation's table finds every row it holds at any size.

const ROWS = 150_000
let redisProcess: RedisProcess
let redis: Redis

function message(row: number, plan = 'gold'): MappedMessage[] {
  return [{ type: 'identify', userId: `user-${row}`, traits: { plan }, integrations: { All: false } }]
}

function scope(): ChangedRowsScope {
  return { action: 'segment_identify', connection: 'default', planId: randomBytes(6).toString('hex') }
}

function open(s: ChangedRowsScope, remember = true): Promise<ChangedRows> {
  return ChangedRows.open({
    redis,
    scope: s,
    mode: 'changed',
    historyKey: undefined,
    maxRows: 1_000_000,
    ttlSeconds: 600,
    remember,
  })
}

/** Runs every row through skipRow and acknowledges the ones sent, as runSend does; returns the rows sent. */
function pass(changed: ChangedRows, rows: number, plan: (row: number) => string): number {
  let sent = 0
  for (let row = 1; row <= rows; row++) {
    if (changed.skipRow(row, message(row, plan(row)))) continue
    sent++
    changed.onAccepted(row)
  }
  return sent
}

async function chunkKeys(s: ChangedRowsScope): Promise<string[]> {
  const prefix = metaKey(s).replace(/:meta$/, '')
  return (await redis.keys(`${prefix}:g*`)).sort()
}

beforeAll(async () => {
  redisProcess = await startRedis()
  redis = new Redis(redisProcess.url)
})

afterAll(async () => {
  redis?.disconnect()
  await redisProcess?.stop()
})

describe('changed rows only, past one chunk', () => {
  it('writes full chunks while the send runs and the last one at commit; the next run skips every unchanged row', async () => {
    const s = scope()
    const first = await open(s)
    expect(pass(first, ROWS, () => 'gold')).toBe(ROWS)
    // Two full chunks (65,536 rows each) are on their way to Redis before the send ends.
    await expect.poll(() => chunkKeys(s)).toHaveLength(2)
    await first.commit('send-1')
    expect(await redis.hgetall(metaKey(s))).toMatchObject({ gen: '1', chunks: '3', rows: String(ROWS) })
    const keys = await chunkKeys(s)
    expect(keys).toHaveLength(3)
    const sizes = await Promise.all(keys.map(async (key) => (await redis.getBuffer(key))!.length))
    expect(sizes.sort((a, b) => a - b)).toEqual([(ROWS - 2 * 65_536) * 16, 65_536 * 16, 65_536 * 16])

    const second = await open(s)
    expect(second.counts.previousRows).toBe(ROWS)
    expect(pass(second, ROWS, (row) => (row % 1000 === 0 ? 'silver' : 'gold'))).toBe(ROWS / 1000)
    expect(second.counts.skipped).toBe(ROWS - ROWS / 1000)
    await second.commit('send-2')
    // The previous generation's chunks are gone; the new one holds every row again.
    const after = await chunkKeys(s)
    expect(after.every((key) => key.includes(':g2:'))).toBe(true)
    expect(await redis.hgetall(metaKey(s))).toMatchObject({ gen: '2', chunks: '3', rows: String(ROWS) })
  })

  it('a run that does not commit removes the chunks it wrote and leaves the previous generation', async () => {
    const s = scope()
    const first = await open(s)
    pass(first, 1000, () => 'gold')
    await first.commit('send-1')
    const before = await chunkKeys(s)

    const failed = await open(s)
    pass(failed, ROWS, () => 'silver')
    await expect.poll(async () => (await chunkKeys(s)).length).toBe(before.length + 2)
    await failed.abandon()
    expect(await chunkKeys(s)).toEqual(before)
    expect(await redis.hgetall(metaKey(s))).toMatchObject({ gen: '1', rows: '1000', send_id: 'send-1' })
  })

  it('a dry run compares and counts but writes nothing', async () => {
    const s = scope()
    const first = await open(s)
    pass(first, 1000, () => 'gold')
    await first.commit('send-1')
    const before = await chunkKeys(s)

    const dry = await open(s, false)
    expect(pass(dry, ROWS, (row) => (row <= 1000 ? 'gold' : 'new'))).toBe(ROWS - 1000)
    expect(dry.counts.skipped).toBe(1000)
    await dry.abandon()
    expect(await chunkKeys(s)).toEqual(before)
  })
})

describe('FingerprintTable', () => {
  it('finds every entry it holds after growing past its first capacity, and nothing it does not hold', () => {
    const table = new FingerprintTable(10)
    const n = 50_000
    for (let i = 1; i <= n; i++) table.set(i * 7919, i, i + 1, i + 2)
    // Identity 0 is remapped, not lost as an empty slot.
    table.set(0, 0, 5, 6)
    expect(table.size).toBe(n + 1)
    for (let i = 1; i <= n; i++) expect(table.matches(i * 7919, i, i + 1, i + 2)).toBe(true)
    expect(table.matches(0, 0, 5, 6)).toBe(true)
    expect(table.matches(7919, 1, 2, 4)).toBe(false)
    expect(table.matches(0, 0, 5, 7)).toBe(false)
    expect(table.matches(123_456_789, 987_654_321, 1, 1)).toBe(false)
    // Setting a known identity again replaces its content instead of adding an entry.
    table.set(7919, 1, 9, 9)
    expect(table.size).toBe(n + 1)
    expect(table.matches(7919, 1, 9, 9)).toBe(true)
  })
})
