import { RedisEnv, loadConfig, resolveRedisSettings } from '@lookstream/config'
import { createRedis } from '@lookstream/redis'
import {
  spawnService,
  startRedisCluster,
  startRedisSentinel,
  waitFor,
  type RedisClusterProcess,
  type RedisSentinelProcess,
} from '@lookstream/testing'
import type { Redis } from 'ioredis'
import { type ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { AUTH, SECRET, createTopics, post, registerAllDestinations } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'
import { withoutSendPointer } from './support/verdict.ts'

// The ingress on a Redis Cluster and on Sentinel, as the standalone "Redis stopped" test checks it: a send that is
// running when Redis goes away still finishes (its record incomplete), GET /sends and readiness answer 503 at once,
// and when Redis is back (the masters restarted; the replica promoted) the same process records sends again.

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const brokers = inject('kafkaBrokers')
const DOWN_AFTER_MS = 1000

let stub: LookerStub
let cluster: RedisClusterProcess
let sentinel: RedisSentinelProcess

beforeAll(async () => {
  ;[stub, cluster, sentinel] = await Promise.all([
    startLookerStub(),
    startRedisCluster({ masters: 3 }),
    startRedisSentinel({ replicas: 1, sentinels: 1, downAfterMs: DOWN_AFTER_MS }),
  ])
  await createTopics(brokers)
}, 60_000)

afterAll(async () => {
  await Promise.all([stub?.close(), cluster?.stop(), sentinel?.stop()])
})

interface Topology {
  env(): Record<string, string>
  /** Redis goes away and stays away until back(). */
  down(): Promise<void>
  back(): Promise<void>
}

let sentinelMaster = 0
const topologies: [string, Topology][] = [
  [
    'a 3-master Redis Cluster (every master stopped, then restarted)',
    {
      env: () => ({ REDIS_MODE: 'cluster', REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.nodes }),
      down: () => Promise.all(cluster.masters.map((m) => m.stop())).then(() => undefined),
      back: async () => {
        for (const i of cluster.masters.keys()) await cluster.restartMaster(i)
      },
    },
  ],
  [
    'Redis Sentinel (the master stopped, then the replica promoted)',
    {
      env: () => ({
        REDIS_MODE: 'sentinel',
        REDIS_URL: sentinel.url,
        REDIS_SENTINELS: sentinel.sentinels,
        REDIS_SENTINEL_MASTER: sentinel.masterName,
      }),
      down: async () => {
        // No failover while the outage is observed; back() lets the sentinels fail over.
        await sentinel.configure('down-after-milliseconds', '600000')
        sentinelMaster = await sentinel.masterPort()
        await sentinel.nodes.find((n) => n.port === sentinelMaster)!.stop()
      },
      back: async () => {
        await sentinel.configure('down-after-milliseconds', String(DOWN_AFTER_MS))
        await sentinel.waitForFailover(sentinelMaster)
      },
    },
  ],
]

const HEAD = '{"fields":{"dimensions":[{"name":"u.id","tags":["user_id"]}]},"data":['
const row = (n: number) => `{"u.id":{"value":"user-${n}"}}`

interface Looker {
  success: boolean
  message: string
  send_id: string
}

describe.each(topologies)('ingress on %s', (name, topology) => {
  it('a running send finishes with its record incomplete, GET /sends answers 503, the ingress stays ready with its Redis gauge at 0; once Redis is back the same process records sends again', async () => {
    const env = topology.env()
    const admin = createRedis(resolveRedisSettings(loadConfig(RedisEnv, env)), { maxRetriesPerRequest: 1 })
    const ingress = await spawnService(
      MAIN,
      {
        ...env,
        ACTION_HUB_SECRET: SECRET,
        LOOKER_HOSTS: stub.origin,
        KAFKA_BROKERS: brokers,
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'info',
        REDIS_COMMAND_TIMEOUT_MS: '300',
        DESTINATION_REGISTRY_CACHE_MS: '60000',
      },
      { readyTimeoutMs: 60_000 },
    )
    try {
      // What the destination services' heartbeats do: the ingress offers only registered destinations.
      await registerAllDestinations(admin as Redis)
      const execute = async (path: string, planId: number) => {
        const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
          type: 'query',
          scheduled_plan: { scheduled_plan_id: planId, download_url: `${stub.origin}${path}` },
        })
        return withoutSendPointer(answer.json.looker as unknown as Looker)
      }
      const sendStatus = async (sendId: string) =>
        (await fetch(`${ingress.url}/sends/${sendId}`, { headers: { authorization: AUTH } })).status

      let release!: () => void
      const released = new Promise<void>((resolve) => (release = resolve))
      let streaming!: () => void
      const isStreaming = new Promise<void>((resolve) => (streaming = resolve))
      const slug = name.split(' ')[0]!.toLowerCase()
      stub.route(`/download/${slug}-held`, {
        kind: 'custom',
        handle: async (response: ServerResponse) => {
          response.writeHead(200, { 'content-type': 'application/json' })
          response.write(`${HEAD}${row(1)}`)
          streaming()
          await released
          response.end(`,${row(2)}]}`)
        },
      })
      const running = execute(`/download/${slug}-held`, 61)
      await isStreaming
      await topology.down()

      const started = performance.now()
      const list = await fetch(`${ingress.url}/sends`, { headers: { authorization: AUTH } })
      expect(performance.now() - started).toBeLessThan(5000)
      expect(list.status).toBe(503)
      expect(((await list.json()) as { error: string }).error).toMatch(/^The send store \(Redis\) did not answer: /)
      release()
      const looker = await running
      expect(looker.success).toBe(true)
      expect(looker.message).toMatch(
        /^Sent to Segment Identify \(connection default\): 2 of 2 rows accepted .* is incomplete: /,
      )
      // Still ready (Looker gets the ingress's own answers, not a missing backend); the gauge tells of the outage.
      const ready = await fetch(`${ingress.url}/readyz`)
      expect(ready.status).toBe(200)
      const report = (await ready.json()) as { checks: Record<string, { status: string }> }
      expect(report.checks.redis).toBeUndefined()
      expect(report.checks.kafka?.status).toBe('ok')
      const redisAvailable = async () =>
        /^lookstream_ingress_redis_available(?:\{[^}]*\})? (\d)$/m.exec(
          await (await fetch(`${ingress.url}/metrics`)).text(),
        )?.[1]
      await waitFor(async () => (await redisAvailable()) === '0', { timeoutMs: 10_000, message: 'the gauge at 0' })

      await topology.back()
      await waitFor(async () => (await redisAvailable()) === '1', {
        timeoutMs: 30_000,
        message: 'the gauge back at 1',
      })
      await waitFor(() => registerAllDestinations(admin as Redis).then(() => true), {
        timeoutMs: 15_000,
        message: 'the registry writable again',
      })
      stub.route(`/download/${slug}-after`, { kind: 'body', body: `${HEAD}${row(3)},${row(4)}]}` })
      const after = await execute(`/download/${slug}-after`, 62)
      expect(after.success).toBe(true)
      expect(after.message).toMatch(
        /^Sent to Segment Identify \(connection default\): 2 of 2 rows accepted .*0 rejected\.$/,
      )
      expect(await sendStatus(after.send_id)).toBe(200)
      expect(ingress.process.hasExited()).toBe(false)
    } finally {
      admin.disconnect()
      await ingress.stop('SIGTERM', 10_000)
    }
  }, 120_000)
})
