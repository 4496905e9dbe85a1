import { startRedis } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Dedupe, dedupeKey } from '../src/dedupe.ts'

let redis: Awaited<ReturnType<typeof startRedis>>
let client: Redis

beforeAll(async () => {
  redis = await startRedis()
  client = new Redis(redis.url)
})

afterAll(async () => {
  await client.quit()
  await redis.stop()
})

describe('Dedupe', () => {
  it('reports only the ids marked delivered, per destination, with a TTL', async () => {
    const dedupe = new Dedupe(client, 'segment', 3600)
    expect(await dedupe.wasDelivered(['a', 'b', 'c'])).toEqual([false, false, false])
    await dedupe.markDelivered(['a', 'c'])
    expect(await dedupe.wasDelivered(['a', 'b', 'c'])).toEqual([true, false, true])
    expect(await new Dedupe(client, 'braze').wasDelivered(['a'])).toEqual([false])
    const ttl = await client.ttl(dedupeKey('segment', 'a'))
    expect(ttl).toBeGreaterThan(3500)
    expect(ttl).toBeLessThanOrEqual(3600)
  })

  it('answers an empty list without a round trip', async () => {
    expect(await new Dedupe(client, 'segment').wasDelivered([])).toEqual([])
  })
})
