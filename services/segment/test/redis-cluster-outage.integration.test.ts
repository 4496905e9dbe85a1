import { newRunId, produceMessages } from '@lookstream/delivery-testing'
import { RateLimiter } from '@lookstream/destination'
import { spawnService, startRedisCluster, waitFor, type RedisClusterProcess } from '@lookstream/testing'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { metricSum, outageEnv } from './redis-outage.ts'
import { identify, startSegmentStack, type SegmentStack } from './segment-stack.ts'

// The segment service on a 3-master Redis Cluster (no replicas): Redis stopped mid-send pauses delivery, which
// resumes by itself when the masters are back, and the simulator ends with every message exactly once.

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const OUTAGE_MS = 3000

let stack: SegmentStack
let cluster: RedisClusterProcess

beforeAll(async () => {
  ;[stack, cluster] = await Promise.all([startSegmentStack(), startRedisCluster({ masters: 3 })])
}, 60_000)

afterEach(() => {
  stack.simulator.reset()
})

afterAll(async () => {
  await Promise.all([stack?.stop(), cluster?.stop()])
})

function acceptedWith(prefix: string): number {
  let n = 0
  for (const id of stack.simulator.state.acceptedIds.keys()) if (id.startsWith(prefix)) n++
  return n
}

const outages: [string, () => Promise<number[]>][] = [
  ['every master', () => Promise.resolve(cluster.masters.map((_, i) => i))],
  // Every request takes a grant from the connection's rate-limit key first: its master going away is enough.
  [
    'the master that owns the rate-limit slot',
    async () => [await cluster.masterFor(RateLimiter.key('segment', 'default'))],
  ],
]

describe('segment service on a Redis Cluster', () => {
  it.each(outages)(
    '%s stopped mid-send: delivery pauses without dead-lettering, resumes by itself, 0 lost and 0 duplicates',
    async (_name, which) => {
      const run = newRunId()
      const total = 1500
      const service = await spawnService(
        MAIN,
        outageEnv(stack, {
          REDIS_MODE: 'cluster',
          REDIS_URL: cluster.url,
          REDIS_CLUSTER_NODES: cluster.nodes,
        }),
        { readyTimeoutMs: 60_000 },
      )
      try {
        await produceMessages(
          stack,
          Array.from({ length: total }, (_, i) => identify(run, i)),
        )
        await waitFor(() => acceptedWith(run) >= 300, { timeoutMs: 30_000, message: '300 accepted' })
        const stopped = await which()
        await Promise.all(stopped.map((i) => cluster.masters[i]!.stop()))
        await waitFor(async () => (await fetch(`${service.url}/readyz`)).status === 503, {
          timeoutMs: 15_000,
          message: 'readiness to report redis down',
        })
        const atPause = acceptedWith(run)
        // The outage lasts OUTAGE_MS: at most the requests already past the rate limiter go out meanwhile.
        await sleep(OUTAGE_MS)
        expect(acceptedWith(run) - atPause).toBeLessThanOrEqual(15 * 4)
        expect(acceptedWith(run)).toBeLessThan(total)
        const metrics = await (await fetch(`${service.url}/metrics`)).text()
        expect(metricSum(metrics, 'lookstream_destination_redis_available')).toBe(0)

        for (const i of stopped) await cluster.restartMaster(i)
        await waitFor(() => acceptedWith(run) === total, { timeoutMs: 60_000, message: `${total} accepted` })
        await waitFor(async () => (await fetch(`${service.url}/readyz`)).status === 200, {
          timeoutMs: 15_000,
          message: 'ready again',
        })
        // The service counts a batch once its dedupe record is written, a moment after the destination accepted it.
        const after = await waitFor(
          async () => {
            const text = await (await fetch(`${service.url}/metrics`)).text()
            return metricSum(text, 'lookstream_destination_delivered_total') >= total ? text : null
          },
          { timeoutMs: 15_000, message: `${total} counted as delivered` },
        )
        expect(metricSum(after, 'lookstream_destination_redis_available')).toBe(1)
        expect(metricSum(after, 'lookstream_destination_dead_lettered_total')).toBe(0)
        expect(metricSum(after, 'lookstream_destination_delivered_total')).toBe(total)
        // The same process delivered everything: no exit, no restart.
        expect(service.process.hasExited()).toBe(false)
        expect(stack.simulator.state.counters.accepted).toBe(total)
        expect(stack.simulator.state.counters.duplicates).toBe(0)
      } finally {
        await service.stop('SIGTERM', 15_000)
      }
    },
    120_000,
  )
})
