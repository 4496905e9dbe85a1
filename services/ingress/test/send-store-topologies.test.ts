import { RedisEnv, loadConfig, resolveRedisSettings } from '@lookstream/config'
import { createRedis, type RedisClient } from '@lookstream/redis'
import {
  createTestCertificates,
  startRedis,
  startRedisCluster,
  startRedisSentinel,
  type RedisClusterProcess,
  type RedisProcess,
  type RedisSentinelProcess,
  type TestCertificates,
} from '@lookstream/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSendStore } from '../src/sends/send-store.ts'

const USER = 'ingress-svc'
const PASSWORD = 'acl-password-for-ingress'

let certs: TestCertificates
let cluster: RedisClusterProcess
let secured: RedisProcess
let sentinel: RedisSentinelProcess
const clients: RedisClient[] = []

beforeAll(async () => {
  certs = createTestCertificates()
  ;[cluster, secured, sentinel] = await Promise.all([
    startRedisCluster({ masters: 3 }),
    startRedis({
      tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile },
      users: { [USER]: PASSWORD },
    }),
    startRedisSentinel({ replicas: 1, sentinels: 1 }),
  ])
})

afterAll(async () => {
  for (const c of clients) c.disconnect()
  await Promise.all([cluster?.stop(), secured?.stop(), sentinel?.stop()])
  certs?.remove()
})

const topologies: [string, () => Record<string, string>][] = [
  [
    'a 3-master Redis Cluster',
    () => ({ REDIS_URL: cluster.url, REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: cluster.nodes }),
  ],
  [
    'redis-server with TLS and an ACL user',
    () => ({ REDIS_URL: secured.url, REDIS_TLS_CA_FILE: certs.caFile, REDIS_USERNAME: USER, REDIS_PASSWORD: PASSWORD }),
  ],
  [
    'a master and a replica behind a Redis Sentinel',
    () => ({
      REDIS_URL: sentinel.url,
      REDIS_MODE: 'sentinel',
      REDIS_SENTINELS: sentinel.sentinels,
      REDIS_SENTINEL_MASTER: sentinel.masterName,
    }),
  ],
]

describe.each(topologies)('send store on %s', (_name, env) => {
  function storeOn(): ReturnType<typeof createSendStore> {
    const redis = createRedis(resolveRedisSettings(loadConfig(RedisEnv, env())))
    clients.push(redis)
    return createSendStore(redis, 3600)
  }

  /** Starts a segment send per id, the i-th at `startedAt[i]` (ms). */
  async function startSends(store: ReturnType<typeof createSendStore>, ids: string[], startedAt: number[]) {
    for (const [i, sendId] of ids.entries()) {
      await store.start({
        sendId,
        action: 'segment_identify',
        destination: 'segment',
        connection: 'main',
        startedAt: new Date(startedAt[i]!),
      })
    }
  }

  it('records sends in one transaction, updates them and lists them newest first', async () => {
    const store = storeOn()
    const base = Date.now()
    const ids = Array.from({ length: 5 }, (_, i) => `send-${base}-${i}`)
    await startSends(
      store,
      ids,
      ids.map((_, i) => base + i),
    )
    await store.finish(ids[4]!, {
      received: 3,
      accepted: 2,
      rejected: 1,
      rejectReasons: [],
      status: 'succeeded',
      message: 'done',
      finishedAt: new Date(base + 10),
    })
    expect(await store.get(ids[4]!)).toMatchObject({ sendId: ids[4], status: 'succeeded', accepted: 2 })
    const page = await store.list({ limit: 3, before: base + 5 })
    expect(page.sends.map((s) => s.sendId)).toEqual([ids[4], ids[3], ids[2]])
    expect(page.next).toBe(base + 2)
  })

  it('pages through sends that started in the same millisecond without skipping any', async () => {
    const store = storeOn()
    // Far from the other test's start times, so each page holds only this test's sends.
    const base = Date.now() + 86_400_000
    const ids = Array.from({ length: 5 }, (_, i) => `tied-${base}-${i}`)
    await startSends(store, ids, [base + 3, base + 2, base + 2, base + 2, base + 1])
    const seen: string[] = []
    let before: number | undefined = base + 4
    for (let pages = 0; before !== undefined && pages < 5; pages++) {
      const page = await store.list({ limit: 2, before })
      seen.push(...page.sends.map((s) => s.sendId).filter((id) => id.startsWith(`tied-${base}-`)))
      before = page.next !== undefined && page.next > base ? page.next : undefined
    }
    expect(seen.toSorted()).toEqual(ids.toSorted())
    expect(new Set(seen).size).toBe(seen.length)
  })
})
