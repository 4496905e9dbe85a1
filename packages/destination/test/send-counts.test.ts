import { startRedis } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addSendCounts, sendRecordKey } from '../src/send-counts.ts'

let redis: Awaited<ReturnType<typeof startRedis>>
let client: Redis

beforeAll(async () => {
  redis = await startRedis()
  client = new Redis(redis.url)
})

afterAll(async () => {
  client.disconnect()
  await redis.stop()
})

describe('addSendCounts', () => {
  it('adds to the fields of the ingress send record that GET /sends/:id reads, and creates no record', async () => {
    await client.hset(sendRecordKey('s-1'), { send_id: 's-1', delivered: '2' })
    await addSendCounts(
      client,
      new Map([
        ['s-1', { delivered: 3, failed: 1, deadLettered: 2, alreadyDelivered: 4 }],
        ['s-2', { delivered: 1, failed: 0, deadLettered: 0, alreadyDelivered: 0 }],
      ]),
    )
    expect(await client.hgetall(sendRecordKey('s-1'))).toEqual({
      send_id: 's-1',
      delivered: '5',
      failed: '1',
      dead_lettered: '2',
      already_delivered: '4',
    })
    expect(await client.exists(sendRecordKey('s-2'))).toBe(0)
  })
})
