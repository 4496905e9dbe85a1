import { messageIdHasher } from '@lookstream/events'
import {
  startRedis,
  startRedisCluster,
  waitFor,
  type RedisClusterProcess,
  type RedisProcess,
} from '@lookstream/testing'
import { Cluster, Redis } from 'ioredis'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DEDUPE_BUCKETS_PER_WINDOW,
  Dedupe,
  DeliveredMarks,
  dedupeField,
  dedupeKey,
  dedupeMetaKey,
} from '../src/dedupe.ts'

let redis: RedisProcess
let client: Redis

beforeAll(async () => {
  redis = await startRedis()
  client = new Redis(redis.url)
})

afterAll(async () => {
  await client.quit()
  await redis.stop()
})

const destination = () => `test-${randomUUID()}`

async function keysOf(redisClient: Redis, dest: string): Promise<string[]> {
  const keys: string[] = []
  for await (const batch of redisClient.scanStream({ match: `lookstream:dedupe:{${dest}:*`, count: 1000 })) {
    keys.push(...(batch as string[]))
  }
  return keys
}

describe('dedupeField', () => {
  it('stores a canonical UUID v4/v5/v7 as its 16 bytes, variant byte first', () => {
    const id = '6ba7b811-9dad-51d1-80b4-00c04fd430c8'
    const field = dedupeField(id)
    expect(field.toString('hex')).toBe('80b400c04fd430c86ba7b8119dad51d1')
    expect(field[0]! & 0xc0).toBe(0x80)
  })

  it('keeps every other short id verbatim after a 0x00 tag and 4 hash bytes, a long one as 0x01 + SHA-256', () => {
    const upper = '6BA7B811-9DAD-51D1-80B4-00C04FD430C8'
    expect(dedupeField(upper)[0]).toBe(0x00)
    expect(dedupeField(upper).subarray(5).toString('utf8')).toBe(upper)
    // A version-1 UUID has a non-random tail, so it is not given the 16-byte form.
    expect(dedupeField('6ba7b811-9dad-11d1-80b4-00c04fd430c8')[0]).toBe(0x00)
    const long = 'x'.repeat(60)
    expect(dedupeField(long)).toHaveLength(33)
    expect(dedupeField(long)[0]).toBe(0x01)
    expect(dedupeField('é'.repeat(29))).toHaveLength(5 + 58)
    expect(dedupeField('é'.repeat(30))).toHaveLength(33)
  })
})

describe('Dedupe', () => {
  it('reports only the ids marked delivered, per destination', async () => {
    const dest = destination()
    const dedupe = new Dedupe(client, dest, 3600)
    const [a, b, c] = [randomUUID(), 'order-17', 'y'.repeat(99)]
    expect(await dedupe.wasDelivered([a, b, c])).toEqual([false, false, false])
    await dedupe.markDelivered([a, c])
    expect(await dedupe.wasDelivered([a, b, c])).toEqual([true, false, true])
    await dedupe.markDelivered([b])
    expect(await dedupe.wasDelivered([a, b, c])).toEqual([true, true, true])
    expect(await new Dedupe(client, destination(), 3600).wasDelivered([a, b, c])).toEqual([false, false, false])
  })

  it('answers an empty list without a round trip', async () => {
    const unreachable = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false })
    expect(await new Dedupe(unreachable, 'segment').wasDelivered([])).toEqual([])
    await new Dedupe(unreachable, 'segment').markDelivered([])
    unreachable.disconnect()
  })

  it('is exact: ids that differ only in case, a trailing space or past the verbatim prefix stay distinct', async () => {
    const dedupe = new Dedupe(client, destination(), 3600)
    const uuid = randomUUID()
    const longA = `${'p'.repeat(70)}a`
    await dedupe.markDelivered([uuid, 'abc', longA])
    expect(
      await dedupe.wasDelivered([uuid, uuid.toUpperCase(), 'abc', 'abc ', 'ABC', longA, `${'p'.repeat(70)}b`]),
    ).toEqual([true, false, true, false, false, true, false])
  })

  it('takes every field form in one call: UUIDs, ids at the verbatim limit, multi-byte and long ids together', async () => {
    const dedupe = new Dedupe(client, destination(), 3600)
    // 59 UTF-8 bytes (the longest field kept verbatim: 64 bytes), 60 bytes (hashed), 4-byte characters, empty.
    const edge = ['v'.repeat(59), 'w'.repeat(60), '😀'.repeat(14), '😀'.repeat(15), '', 'x']
    const uuids = Array.from({ length: 1000 }, () => randomUUID())
    const marked = [...uuids.slice(0, 500), ...edge.slice(0, 3)]
    await dedupe.markDelivered(marked)
    const asked = [...uuids, ...edge, 'v'.repeat(58), 'w'.repeat(61)]
    const expected = asked.map((id) => marked.includes(id))
    expect(await dedupe.wasDelivered(asked)).toEqual(expected)
  })

  it('grows one small hash at a time: every id found, no unknown id found, every hash a listpack', async () => {
    const dest = destination()
    const dedupe = new Dedupe(client, dest, 3600, { load: 8 })
    const hasher = messageIdHasher({ destination: dest, connection: 'default', sendKey: 'plan-1', ranAt: 'r' })
    const ids = Array.from({ length: 6000 }, (_, i) => hasher(`user-${i}`, { i }, 0))
    for (let i = 0; i < ids.length; i += 500) await dedupe.markDelivered(ids.slice(i, i + 500))
    // Marking again adds nothing.
    await dedupe.markDelivered(ids.slice(0, 500))

    const found = await dedupe.wasDelivered(ids)
    expect(found.every(Boolean)).toBe(true)
    const unknown = Array.from({ length: 6000 }, (_, i) => hasher(`user-${i}`, { i }, 1))
    expect((await dedupe.wasDelivered(unknown)).some(Boolean)).toBe(false)

    const keys = await keysOf(client, dest)
    const hashes = keys.filter((key) => /:\d+$/.test(key.slice(key.indexOf('}'))))
    const state = keys.filter((key) => key.endsWith('}'))
    expect(state).toHaveLength(1)
    expect(Number(await client.hget(state[0]!, 'n'))).toBe(6000)
    // Linear hashing keeps the average at the load: 6000 / 8 = 750 addresses (an address with no id has no key).
    const [level, split] = (await client.hmget(state[0]!, 'l', 'p')).map(Number)
    expect(2 ** level! + split!).toBe(750)
    expect(hashes.length).toBeLessThanOrEqual(750)
    expect(hashes.length).toBeGreaterThan(740)
    let total = 0
    for (const key of hashes) {
      expect(await client.object('ENCODING', key)).toBe('listpack')
      const length = await client.hlen(key)
      expect(length).toBeLessThanOrEqual(128)
      total += length
    }
    expect(total).toBe(6000)
  })

  it('remembers an id for the window and one bucket at most, whatever the clock says in between', async () => {
    const windowMs = 7 * 24 * 3600 * 1000
    const bucketMs = windowMs / DEDUPE_BUCKETS_PER_WINDOW
    // Times near the real clock: the keys' PEXPIREAT must lie in the future.
    let now = Math.floor(Date.now() / bucketMs) * bucketMs
    const dedupe = new Dedupe(client, destination(), windowMs / 1000, { now: () => now })
    const marked = now + bucketMs - 1 // the last millisecond of its bucket
    now = marked
    const id = randomUUID()
    await dedupe.markDelivered([id])
    for (const age of [0, 1, bucketMs, windowMs - 1]) {
      now = marked + age
      expect(await dedupe.wasDelivered([id]), `age ${age} ms`).toEqual([true])
    }
    now = marked + windowMs + 1
    expect(await dedupe.wasDelivered([id])).toEqual([false])
    // Marked by a replica whose clock runs a bucket ahead: still found here.
    const ahead = randomUUID()
    await dedupe.markDelivered([ahead], now + bucketMs)
    expect(await dedupe.wasDelivered([ahead])).toEqual([true])
  })

  it('expires with a short TTL: remembered for at least the TTL, then every key of the bucket is gone', async () => {
    const dest = destination()
    const ttlSeconds = 1.5
    const dedupe = new Dedupe(client, dest, ttlSeconds)
    const ids = Array.from({ length: 300 }, () => randomUUID())
    const markedAt = Date.now()
    await dedupe.markDelivered(ids)
    expect((await dedupe.wasDelivered(ids)).every(Boolean)).toBe(true)
    const forgottenAt = await waitFor(
      async () => ((await dedupe.wasDelivered(ids.slice(0, 1)))[0] === false ? Date.now() : false),
      { timeoutMs: 10_000, intervalMs: 20, message: 'the id to be forgotten' },
    )
    expect(forgottenAt - markedAt).toBeGreaterThanOrEqual(ttlSeconds * 1000)
    expect((await dedupe.wasDelivered(ids)).some(Boolean)).toBe(false)
    // Nothing is left behind: the bucket's state and hashes expire together (Redis expires keys actively).
    await waitFor(async () => (await keysOf(client, dest)).length === 0, {
      timeoutMs: 15_000,
      message: 'the bucket keys to expire',
    })
    expect(await client.exists(dedupeMetaKey(dest))).toBe(1)
  }, 40_000)

  it('still honours keys of the previous layout during the rollout window, and stops reading them after it', async () => {
    const dest = destination()
    const legacyId = randomUUID()
    await client.set(dedupeKey(dest, legacyId), String(Date.now()), 'EX', 3600)
    expect(await new Dedupe(client, dest, 3600).wasDelivered([legacyId, randomUUID()])).toEqual([true, false])

    // The layout has been in use for longer than one window plus the grace: old keys would all have expired.
    const since = Date.now() - 3600_000 - 61_000
    const later = destination()
    await client.hset(dedupeMetaKey(later), 'bucket-ms', String(Math.ceil(3600_000 / 7)), 'compact-since', since)
    await client.set(dedupeKey(later, legacyId), '1', 'EX', 3600)
    const afterGrace = new Dedupe(client, later, 3600, { legacyGraceSeconds: 60 })
    expect(await afterGrace.wasDelivered([legacyId])).toEqual([false])
  })

  it('looks for previous-layout keys once: where there were some it goes on reading them, where none it stops, for every replica', async () => {
    const withOld = destination()
    const legacyId = randomUUID()
    await client.set(dedupeKey(withOld, legacyId), '1', 'EX', 3600)
    const first = new Dedupe(client, withOld, 3600)
    expect(await first.wasDelivered([legacyId])).toEqual([true])
    await first.legacyChecked()
    expect(await client.hget(dedupeMetaKey(withOld), 'legacy')).toBe('present')
    expect(await first.wasDelivered([legacyId])).toEqual([true])

    // A destination first used with this layout: nothing of the previous one to read, then or later.
    const fresh = destination()
    const replica = new Dedupe(client, fresh, 3600)
    expect(await replica.wasDelivered([randomUUID()])).toEqual([false])
    await replica.legacyChecked()
    expect(await client.hget(dedupeMetaKey(fresh), 'legacy')).toBe('none')
    const lateId = randomUUID()
    await client.set(dedupeKey(fresh, lateId), '1', 'EX', 3600)
    expect(await replica.wasDelivered([lateId])).toEqual([false])
    // Another replica (or a restart) takes the stored verdict without looking again.
    expect(await new Dedupe(client, fresh, 3600).wasDelivered([lateId])).toEqual([false])
  })

  it('keeps the bucket length it was first given when the window changes', async () => {
    const dest = destination()
    const id = randomUUID()
    await new Dedupe(client, dest, 3600).markDelivered([id])
    expect(await new Dedupe(client, dest, 7200).wasDelivered([id])).toEqual([true])
    expect(await client.hget(dedupeMetaKey(dest), 'bucket-ms')).toBe(String(Math.ceil(3600_000 / 7)))
  })

  it('takes a bucket length of its own when the window grew past 28 stored buckets', async () => {
    const dest = destination()
    await new Dedupe(client, dest, 60).markDelivered([randomUUID()])
    expect(await client.hget(dedupeMetaKey(dest), 'bucket-ms')).toBe(String(Math.ceil(60_000 / 7)))
    await new Dedupe(client, dest, 7 * 24 * 3600).wasDelivered([randomUUID()])
    expect(await client.hget(dedupeMetaKey(dest), 'bucket-ms')).toBe(String(24 * 3600_000))
  })

  it('fails rather than answering "not delivered" when Redis does not answer', async () => {
    const own = await startRedis()
    const direct = new Redis(own.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false })
    await waitFor(() => direct.status === 'ready', { message: 'the client to connect' })
    const dedupe = new Dedupe(direct, destination(), 3600)
    const id = randomUUID()
    await dedupe.markDelivered([id])
    await own.stop()
    await waitFor(() => direct.status !== 'ready', { message: 'the client to notice' })
    await expect(dedupe.wasDelivered([id])).rejects.toThrow()
    await expect(dedupe.markDelivered([randomUUID()])).rejects.toThrow()
    direct.disconnect()
  })

  it('refuses a bad TTL or load', () => {
    expect(() => new Dedupe(client, 'segment', 0)).toThrow(/ttlSeconds must be a positive number/)
    expect(() => new Dedupe(client, 'segment', 60, { load: 100 })).toThrow(/load must be an integer from 1 to 64/)
  })
})

describe('Dedupe on a 3-master Redis Cluster', () => {
  let redisCluster: RedisClusterProcess
  let nodes: RedisProcess[]
  let cluster: Cluster

  beforeAll(async () => {
    redisCluster = await startRedisCluster({ masters: 3 })
    nodes = redisCluster.masters
    cluster = new Cluster(nodes.map((node) => ({ host: '127.0.0.1', port: node.port })))
  }, 60_000)

  afterAll(async () => {
    await cluster?.quit()
    await redisCluster?.stop()
  })

  it('marks and finds ids across a window whose buckets live on different masters', async () => {
    const dest = destination()
    const windowMs = 7 * 24 * 3600 * 1000
    const start = Date.now() - windowMs
    let now = start
    const dedupe = new Dedupe(cluster, dest, windowMs / 1000, { now: () => now })
    const marked: string[] = []
    for (let day = 1; day <= 7; day++) {
      now = start + day * 24 * 3600 * 1000 - 3600_000
      const ids = Array.from({ length: 400 }, () => randomUUID())
      marked.push(...ids)
      await dedupe.markDelivered(ids)
    }
    const fresh = Array.from({ length: 400 }, () => randomUUID())
    const answer = await dedupe.wasDelivered([...marked, ...fresh])
    expect(answer.slice(0, marked.length).every(Boolean)).toBe(true)
    expect(answer.slice(marked.length).some(Boolean)).toBe(false)

    // The buckets are spread over the masters, each bucket's keys on one slot.
    const holders = await Promise.all(
      nodes.map(async (node) => {
        const direct = new Redis(node.url)
        try {
          return (await keysOf(direct, dest)).length
        } finally {
          await direct.quit()
        }
      }),
    )
    expect(holders.filter((count) => count > 0).length).toBeGreaterThanOrEqual(2)
  })

  it('reads previous-layout keys one by one on a cluster (no cross-slot MGET)', async () => {
    const dest = destination()
    const ids = Array.from({ length: 50 }, () => randomUUID())
    for (const id of ids.slice(0, 25)) await cluster.set(dedupeKey(dest, id), '1', 'EX', 3600)
    const answer = await new Dedupe(cluster, dest, 3600).wasDelivered(ids)
    expect(answer).toEqual(ids.map((_, i) => i < 25))
  })
})

describe('DeliveredMarks', () => {
  async function scriptCalls(): Promise<number> {
    const stats = await client.info('commandstats')
    return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
  }

  it('gathers the ids of concurrent calls into few script calls, and resolves each once its ids are remembered', async () => {
    const dedupe = new Dedupe(client, destination(), 3600)
    await dedupe.markDelivered([randomUUID()]) // the layout is read once, before counting
    const marks = new DeliveredMarks(dedupe)
    const groups = Array.from({ length: 40 }, () => Array.from({ length: 75 }, () => randomUUID()))
    const before = await scriptCalls()
    await Promise.all(groups.map((ids) => marks.mark(ids)))
    const calls = (await scriptCalls()) - before
    // Made in one turn of the event loop, the 40 calls share one script call.
    expect(calls).toBe(1)
    expect((await dedupe.wasDelivered(groups.flat())).every(Boolean)).toBe(true)

    // Calls made while one is in flight (or after it) gather: one more script call for all of them.
    const first = marks.mark([randomUUID()])
    await new Promise((resolve) => setImmediate(resolve))
    const later = Array.from({ length: 10 }, () => Array.from({ length: 75 }, () => randomUUID()))
    const beforeLater = await scriptCalls()
    await Promise.all([first, ...later.map((ids) => marks.mark(ids))])
    expect((await scriptCalls()) - beforeLater).toBe(1)
    expect((await dedupe.wasDelivered(later.flat())).every(Boolean)).toBe(true)
  })

  it('rejects every gathered caller when the call fails, and works again once Redis is back', async () => {
    let own = await startRedis()
    const port = own.port
    const ownClient = new Redis(own.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true })
    await ownClient.connect()
    try {
      const dedupe = new Dedupe(ownClient, destination(), 3600)
      const marks = new DeliveredMarks(dedupe)
      await marks.mark([randomUUID()])
      await own.stop()
      await waitFor(() => ownClient.status !== 'ready')
      const results = await Promise.allSettled([marks.mark([randomUUID()]), marks.mark([randomUUID()])])
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])

      own = await startRedis({ port })
      await waitFor(() => ownClient.status === 'ready')
      const again = [randomUUID(), randomUUID()]
      await Promise.all([marks.mark([again[0]!]), marks.mark([again[1]!])])
      expect(await dedupe.wasDelivered(again)).toEqual([true, true])
    } finally {
      ownClient.disconnect()
      await own.stop()
    }
  })
})
