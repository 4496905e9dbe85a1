import { RedisEnv, loadConfig, resolveRedisSettings } from '@lookstream/config'
import { liveDestinations, RegistryHeartbeat, sendRecordKey } from '@lookstream/events'
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
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Dedupe } from '../src/dedupe.ts'
import { RateLimiter } from '../src/rate-limiter.ts'
import { addSendCounts } from '../src/send-counts.ts'

const USER = 'destination-svc'
const PASSWORD = 'acl-password-for-tests'

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

// The clients the destination runtime builds, from the settings an operator gives.
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

function client(env: Record<string, string>): RedisClient {
  const c = createRedis(resolveRedisSettings(loadConfig(RedisEnv, env)), { maxRetriesPerRequest: 1 })
  clients.push(c)
  return c
}

describe.each(topologies)('destination Redis use on %s', (_name, env) => {
  it('dedupes: finds exactly the ids marked delivered, from another client', async () => {
    const destination = `topology-${randomUUID()}`
    const marked = Array.from({ length: 300 }, () => randomUUID())
    const fresh = Array.from({ length: 300 }, () => randomUUID())
    await new Dedupe(client(env()), destination, 3600).markDelivered(marked)
    const answer = await new Dedupe(client(env()), destination, 3600).wasDelivered([...marked, ...fresh])
    expect(answer).toEqual([...marked.map(() => true), ...fresh.map(() => false)])
  })

  it('shares one rate-limit schedule between two clients', async () => {
    const a = new RateLimiter(client(env()))
    const b = new RateLimiter(client(env()))
    const key = RateLimiter.key('segment', `topology-${Date.now()}`)
    expect((await a.tryAcquire(key, { rps: 5 })).waitMs).toBe(0)
    const second = await b.tryAcquire(key, { rps: 5 })
    expect(second.waitMs).toBeGreaterThan(100)
    expect(second.waitMs).toBeLessThanOrEqual(200)
  })

  it('counts into many send records with one pipeline', async () => {
    const redis = client(env())
    const ids = Array.from({ length: 40 }, (_, i) => `topology-${Date.now()}-${i}`)
    for (const id of ids) await redis.hset(sendRecordKey(id), { send_id: id })
    await addSendCounts(
      redis,
      new Map(ids.map((id) => [id, { delivered: 2, failed: 0, deadLettered: 1, alreadyDelivered: 0 }])),
    )
    const records = await Promise.all(ids.map((id) => redis.hgetall(sendRecordKey(id))))
    expect(records.every((r) => r.delivered === '2' && r.dead_lettered === '1' && r.failed === undefined)).toBe(true)
  })

  it('keeps the destination registry', async () => {
    const redis = client(env())
    const destination = `topology-${Date.now()}`
    const heartbeat = new RegistryHeartbeat(
      redis,
      { destination, instance: 'i-1', version: '1.0.0', connections: ['main'], startedAt: new Date().toISOString() },
      10_000,
    )
    await heartbeat.beat()
    expect((await liveDestinations(redis)).get(destination)).toEqual({
      destination,
      connections: ['main'],
      instances: 1,
      versions: ['1.0.0'],
      settings: {},
    })
  })
})
