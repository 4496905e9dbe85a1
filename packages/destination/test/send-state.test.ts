import { startRedis, startRedisCluster, type RedisClusterProcess, type RedisProcess } from '@lookstream/testing'
import { Cluster, Redis } from 'ioredis'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SendStates, fileOpenSetKey, fileSendKeys, type AdoptedFacts } from '../src/file/send-state.ts'
import { closedKey, finishedKey, rejectedKey, stagedObjectKind } from '../src/file/staged-chunk.ts'

const FINISHED = { status: 'succeeded', accepted: 10, startedAt: '2026-12-07T10:00:00.000Z', connection: 'eu' } as const

function facts(extra: Partial<AdoptedFacts> = {}): AdoptedFacts {
  return { connection: 'default', staged: 0, finished: undefined, closed: undefined, ...extra }
}

// The origin of a send's state and its adoption from the staging area, on a standalone server and on a cluster
// (every script stays on the send's slot).
function sendStateTests(name: string, client: () => Redis | Cluster): void {
  describe(`SendStates on ${name}: origin and adoption`, () => {
    const destination = () => `test-${randomUUID().slice(0, 8)}`

    it('creates a state with its origin only for a send it has none for, and keeps one created meanwhile', async () => {
      const states = new SendStates(client(), destination(), 3600)
      const send = randomUUID()
      expect(await states.origin(send)).toBe('missing')
      expect(await states.create(send)).toBe('complete')
      expect(await states.origin(send)).toBe('complete')
      expect((await states.get(send)).complete).toBe(true)
      // Created without an origin by a later event (Redis lost what it knew): create leaves it partial.
      const lost = randomUUID()
      await states.staged(lost, 'default', 5)
      expect(await states.origin(lost)).toBe('partial')
      expect(await states.create(lost)).toBe('partial')
      expect((await states.get(lost)).staged).toBe(5)
      expect((await states.get(lost)).complete).toBe(false)
    })

    it('adopts a lost send once: staged rows added, finished fields kept or restored, then never again', async () => {
      const dest = destination()
      const states = new SendStates(client(), dest, 3600)
      const send = randomUUID()
      // A chunk staged after the loss counted itself; the finished event came before it and was lost.
      await states.staged(send, 'default', 4)
      expect(await states.adopt(send, facts({ staged: 10, finished: FINISHED }))).toBe(true)
      const state = await states.get(send)
      expect(state).toMatchObject({ status: 'succeeded', accepted: 10, staged: 14, connection: 'eu', complete: true })
      expect(state.startedAt).toBe(FINISHED.startedAt)
      expect(await states.adopt(send, facts({ staged: 10, finished: FINISHED }))).toBe(false)
      expect((await states.get(send)).staged).toBe(14)
      // A send whose state has an origin is never adopted.
      const known = randomUUID()
      await states.create(known)
      await states.staged(known, 'default', 3)
      expect(await states.adopt(known, facts({ staged: 3 }))).toBe(false)
      expect((await states.get(known)).staged).toBe(3)
      expect(await client().smembers(fileOpenSetKey(dest))).toEqual(expect.arrayContaining([send, known]))
    })

    it('keeps finished fields an event wrote after the loss, and the rejected rows it restores', async () => {
      const states = new SendStates(client(), destination(), 3600)
      const send = randomUUID()
      await states.finished(send, { ...FINISHED, accepted: 12, connection: 'default', error: undefined })
      expect(
        await states.reject(send, [{ where: 't:0:7', reason: 'LS_DEST_UNSUPPORTED_VALUE: rejected before the loss' }]),
      ).toBe(true)
      expect(await states.adopt(send, facts({ staged: 11, finished: FINISHED }))).toBe(true)
      expect(await states.get(send)).toMatchObject({ accepted: 12, staged: 11, rejected: 1, connection: 'default' })
    })

    it('adopts a send closed mid-cleanup as closed, and never reopens a state closed after the loss', async () => {
      const states = new SendStates(client(), destination(), 3600)
      const closed = {
        outcome: 'published',
        location: 's3://b/ingest/traits_x.csv',
        rows: 10,
        delivered: 10,
        deadLettered: 0,
        connection: '',
      } as const
      const send = randomUUID()
      expect(await states.adopt(send, facts({ staged: 7, closed }))).toBe(true)
      const state = await states.get(send)
      // Closed without naming a connection: the one whose staging area held it, so its cleanup can run.
      expect(state).toMatchObject({ outcome: 'published', location: closed.location, connection: 'default' })
      expect(state.staged).toBe(0)
      expect(await states.closedFacts(send)).toEqual({ ...closed, connection: 'default' })
      // Closed by a compose that began before the loss, then adopted from what the folder still held.
      const other = randomUUID()
      await states.close(other, 'failed', { rows: 0, deadLettered: 0, reason: 'why' })
      expect(await states.adopt(other, facts({ staged: 10, finished: FINISHED }))).toBe(true)
      expect(await states.get(other)).toMatchObject({ outcome: 'failed', status: undefined, staged: 0 })
      expect(await states.reject(other, [{ where: 't:0:1', reason: 'x' }])).toBe(false)
    })

    it('keeps every key of one send on its slot', () => {
      const keys = Object.values(fileSendKeys('recurly-engage', 'abc'))
      for (const key of keys) expect(key).toContain('{recurly-engage:abc}')
    })
  })
}

describe('staging folder objects', () => {
  it('names what a send folder holds, and nothing else', () => {
    const send = 'a1b2'
    expect(stagedObjectKind(send, finishedKey(send))).toBe('finished')
    expect(stagedObjectKind(send, closedKey(send))).toBe('closed')
    expect(stagedObjectKind(send, rejectedKey(send, 'lookstream.identify.v1', 3, '17', 'w1'))).toBe('rejected')
    expect(stagedObjectKind(send, `${send}/lookstream.identify.v1~3/${'17'.padStart(20, '0')}-w1.rows`)).toBe('chunk')
    expect(stagedObjectKind(send, `${send}/traits_20261207T100000Z.csv`)).toBeUndefined()
    expect(stagedObjectKind(send, `other/finished.json`)).toBeUndefined()
    expect(stagedObjectKind(send, `${send}x/finished.json`)).toBeUndefined()
  })
})

let redis: RedisProcess
let standalone: Redis
let redisCluster: RedisClusterProcess
let cluster: Cluster

beforeAll(async () => {
  redis = await startRedis()
  standalone = new Redis(redis.url)
  redisCluster = await startRedisCluster({ masters: 3 })
  cluster = new Cluster(redisCluster.masters.map((node) => ({ host: '127.0.0.1', port: node.port })))
}, 60_000)

afterAll(async () => {
  await standalone?.quit()
  await redis?.stop()
  await cluster?.quit()
  await redisCluster?.stop()
})

sendStateTests('a standalone server', () => standalone)
sendStateTests('a 3-master Redis Cluster', () => cluster)
