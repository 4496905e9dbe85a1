import type {} from '@lookstream/testing'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import {
  allRowFailures,
  deriveHistoryKey,
  failureCountsKey,
  failuresKey,
  readFailureSummary,
  readRowFailures,
  recordRowFailures,
  sendRecordKey,
  type RowFailure,
} from '../src/index.ts'

const key = deriveHistoryKey('history-secret-0123456789')
let redis: Redis

beforeAll(() => {
  redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 })
})
afterAll(() => redis.disconnect())

async function newSend(ttlSeconds = 600): Promise<string> {
  const sendId = randomUUID()
  await redis.hset(sendRecordKey(sendId), { send_id: sendId })
  await redis.expire(sendRecordKey(sendId), ttlSeconds)
  return sendId
}

function failure(row: number, overrides: Partial<RowFailure> = {}): RowFailure {
  return {
    destination: 'segment',
    row,
    messageId: `m-${row}`,
    stage: 'dead-lettered',
    code: 'http_400',
    reason: `Segment said: user ${row}@example.com is invalid`,
    identity: { userId: `user-${row}`, email: `${row}@example.com` },
    at: new Date('2026-01-02T03:04:05.000Z'),
    ...overrides,
  }
}

describe('recordRowFailures', () => {
  it('keeps each failure with its row, reason and identity, and counts them by stage, destination and code', async () => {
    const sendId = await newSend()
    const result = await recordRowFailures(
      redis,
      sendId,
      [failure(3), failure(7, { stage: 'rejected', code: 'no_identity', destination: 'segment' })],
      { key },
    )
    expect(result).toEqual({ stored: 2, counted: 2, noRecord: false })
    const rows = await readRowFailures(redis, sendId, key)
    expect(rows).toEqual([
      {
        destination: 'segment',
        row: 3,
        messageId: 'm-3',
        stage: 'dead-lettered',
        code: 'http_400',
        reason: 'Segment said: user 3@example.com is invalid',
        identity: { userId: 'user-3', email: '3@example.com' },
        at: '2026-01-02T03:04:05.000Z',
      },
      expect.objectContaining({ row: 7, stage: 'rejected', code: 'no_identity' }),
    ])
    const summary = await readFailureSummary(redis, sendId)
    expect(summary).toMatchObject({
      total: 2,
      stored: 2,
      byStage: { 'dead-lettered': 1, rejected: 1 },
      byDestination: { segment: 2 },
      byCode: { http_400: 1, no_identity: 1 },
    })
  })

  it('writes the row details to Redis only sealed: no identity value or vendor message in the clear', async () => {
    const sendId = await newSend()
    await recordRowFailures(redis, sendId, [failure(1)], { key })
    const raw = await redis.lrange(failuresKey(sendId), 0, -1)
    const counts = JSON.stringify(await redis.hgetall(failureCountsKey(sendId)))
    expect(raw).toHaveLength(1)
    for (const text of [...raw, counts]) {
      expect(text).not.toContain('user-1')
      expect(text).not.toContain('1@example.com')
      expect(text).not.toContain('Segment said')
    }
    // Under another key the routing facts still read, the details do not.
    const other = await readRowFailures(redis, sendId, deriveHistoryKey('another-secret-0123456789'))
    expect(other).toEqual([expect.objectContaining({ row: 1, reason: undefined, identity: undefined })])
  })

  it('keeps the first maxEntries failures across calls and counts every one', async () => {
    const sendId = await newSend()
    const batch = (from: number) => Array.from({ length: 40 }, (_, i) => failure(from + i))
    for (let call = 0; call < 5; call++)
      await recordRowFailures(redis, sendId, batch(call * 40), { key, maxEntries: 50 })
    const counted = Array.from({ length: 1000 }, () => ({
      stage: 'failed' as const,
      destination: 'segment',
      code: 'http_422',
    }))
    await recordRowFailures(redis, sendId, [], { key, maxEntries: 50, countOnly: counted })
    const summary = await readFailureSummary(redis, sendId)
    expect(summary.total).toBe(1200)
    expect(summary.stored).toBe(50)
    expect(summary.byStage).toEqual({ 'dead-lettered': 200, failed: 1000 })
    expect(summary.byCode).toEqual({ http_400: 200, http_422: 1000 })
    expect(await redis.llen(failuresKey(sendId))).toBe(50)
    const rows = (await readRowFailures(redis, sendId, key, { limit: 100 })).map((f) => f.row)
    expect(rows).toEqual(Array.from({ length: 50 }, (_, i) => i))
  })

  it('keeps at most maxBytes bytes per send', async () => {
    const sendId = await newSend()
    const entries = Array.from({ length: 100 }, (_, i) => failure(i, { reason: 'x'.repeat(500) }))
    await recordRowFailures(redis, sendId, entries, { key, maxBytes: 20_000 })
    const summary = await readFailureSummary(redis, sendId)
    const used = Number(await redis.memory('USAGE', failuresKey(sendId)))
    expect(summary.total).toBe(100)
    expect(summary.stored).toBeGreaterThan(0)
    expect(summary.stored).toBeLessThan(100)
    expect(summary.bytes).toBeLessThanOrEqual(20_000)
    expect(used).toBeLessThan(20_000 + 4096)
  })

  it('clips long reasons and identity values and says so', async () => {
    const sendId = await newSend()
    await recordRowFailures(
      redis,
      sendId,
      [failure(1, { reason: 'r'.repeat(5000), identity: { userId: 'u'.repeat(1000) } })],
      { key },
    )
    const [row] = await readRowFailures(redis, sendId, key)
    expect(row!.reason).toBe(`${'r'.repeat(1024)}… [3976 more characters not kept]`)
    expect(row!.identity!.userId).toBe(`${'u'.repeat(256)}… [744 more characters not kept]`)
  })

  it('expires with the send record, and writes nothing for a send without a record', async () => {
    const sendId = await newSend(120)
    await recordRowFailures(redis, sendId, [failure(1)], { key })
    for (const k of [failuresKey(sendId), failureCountsKey(sendId)]) {
      const ttl = await redis.pttl(k)
      expect(ttl).toBeGreaterThan(110_000)
      expect(ttl).toBeLessThanOrEqual(120_000)
    }
    const unknown = randomUUID()
    expect(await recordRowFailures(redis, unknown, [failure(1)], { key })).toEqual({
      stored: 0,
      counted: 0,
      noRecord: true,
    })
    expect(await redis.exists(failuresKey(unknown), failureCountsKey(unknown))).toBe(0)
  })

  it('uses one hash-tagged slot per send and refuses ids that would break out of it', async () => {
    const sendId = randomUUID()
    expect(failuresKey(sendId)).toBe(`lookstream:send:{${sendId}}:failures`)
    expect(failureCountsKey(sendId)).toBe(`lookstream:send:{${sendId}}:failure-counts`)
    expect(() => failuresKey('a}b')).toThrow(/a send id is 1 to 128 characters/)
    expect(() => failuresKey('')).toThrow(/a send id/)
    await expect(recordRowFailures(redis, 'x{y', [failure(1)], { key })).rejects.toThrow(/a send id/)
  })

  it('refuses an unknown stage and a bad row number with their names', async () => {
    const sendId = await newSend()
    await expect(
      recordRowFailures(redis, sendId, [failure(1, { stage: 'lost' as never })], { key, ttlSeconds: 60 }),
    ).rejects.toThrow('unknown failure stage "lost"')
    await expect(recordRowFailures(redis, sendId, [failure(-1)], { key, ttlSeconds: 60 })).rejects.toThrow(
      'a failure row number is an integer ≥ 0',
    )
  })

  it('reads every kept failure page by page', async () => {
    const sendId = await newSend()
    await recordRowFailures(
      redis,
      sendId,
      Array.from({ length: 25 }, (_, i) => failure(i)),
      { key },
    )
    const pages: number[] = []
    for await (const page of allRowFailures(redis, sendId, key, 10)) pages.push(page.length)
    expect(pages).toEqual([10, 10, 5])
  })
})
