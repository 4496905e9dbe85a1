import { newRunId, produceMessages } from '@lookstream/delivery-testing'
import {
  spawnService,
  startRedisSentinel,
  waitFor,
  type RedisSentinelProcess,
  type SpawnedService,
} from '@lookstream/testing'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { metricSum, outageEnv } from './redis-outage.ts'
import { identify, startSegmentStack, type SegmentStack } from './segment-stack.ts'

// The segment service on a master and a replica watched by Redis Sentinel: when the master stops, delivery pauses
// and resumes by itself, either on the replica the sentinels promote or on the master when it comes back first,
// and the simulator ends with every message exactly once.

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const OUTAGE_MS = 3000
const DOWN_AFTER_MS = 1000

let stack: SegmentStack
let sentinel: RedisSentinelProcess

beforeAll(async () => {
  ;[stack, sentinel] = await Promise.all([
    startSegmentStack(),
    startRedisSentinel({ replicas: 1, sentinels: 3, downAfterMs: DOWN_AFTER_MS }),
  ])
}, 60_000)

afterEach(async () => {
  stack.simulator.reset()
  await sentinel.configure('down-after-milliseconds', String(DOWN_AFTER_MS))
})

afterAll(async () => {
  await Promise.all([stack?.stop(), sentinel?.stop()])
})

function acceptedWith(prefix: string): number {
  let n = 0
  for (const id of stack.simulator.state.acceptedIds.keys()) if (id.startsWith(prefix)) n++
  return n
}

const TOTAL = 1500

async function startSending(): Promise<{ run: string; service: SpawnedService }> {
  const run = newRunId()
  const service = await spawnService(
    MAIN,
    outageEnv(stack, {
      REDIS_MODE: 'sentinel',
      REDIS_URL: sentinel.url,
      REDIS_SENTINELS: sentinel.sentinels,
      REDIS_SENTINEL_MASTER: sentinel.masterName,
    }),
    { readyTimeoutMs: 60_000 },
  )
  await produceMessages(
    stack,
    Array.from({ length: TOTAL }, (_, i) => identify(run, i)),
  )
  await waitFor(() => acceptedWith(run) >= 300, { timeoutMs: 30_000, message: '300 accepted' })
  return { run, service }
}

async function expectExactlyOnce(run: string, service: SpawnedService): Promise<void> {
  await waitFor(() => acceptedWith(run) === TOTAL, { timeoutMs: 60_000, message: `${TOTAL} accepted` })
  await waitFor(async () => (await fetch(`${service.url}/readyz`)).status === 200, {
    timeoutMs: 15_000,
    message: 'ready again',
  })
  // The service counts a batch once its dedupe record is written, a moment after the destination accepted it.
  const metrics = await waitFor(
    async () => {
      const text = await (await fetch(`${service.url}/metrics`)).text()
      return metricSum(text, 'lookstream_destination_delivered_total') >= TOTAL ? text : null
    },
    { timeoutMs: 15_000, message: `${TOTAL} counted as delivered` },
  )
  expect(metricSum(metrics, 'lookstream_destination_redis_available')).toBe(1)
  expect(metricSum(metrics, 'lookstream_destination_dead_lettered_total')).toBe(0)
  expect(metricSum(metrics, 'lookstream_destination_delivered_total')).toBe(TOTAL)
  // The same process delivered everything: no exit, no restart.
  expect(service.process.hasExited()).toBe(false)
  expect(stack.simulator.state.counters.accepted).toBe(TOTAL)
  expect(stack.simulator.state.counters.duplicates).toBe(0)
}

async function pausedBy(service: SpawnedService): Promise<void> {
  await waitFor(async () => (await fetch(`${service.url}/readyz`)).status === 503, {
    timeoutMs: 15_000,
    message: 'readiness to report redis down',
  })
}

describe('segment service on Redis Sentinel', () => {
  it('master stopped mid-send, the sentinels promote the replica: delivery pauses, resumes on the new master by itself, 0 lost and 0 duplicates', async () => {
    const { run, service } = await startSending()
    try {
      const oldPort = await sentinel.masterPort()
      await sentinel.nodes.find((n) => n.port === oldPort)!.stop()
      await pausedBy(service)
      expect(acceptedWith(run)).toBeLessThan(TOTAL)
      const newPort = await sentinel.waitForFailover(oldPort)
      expect(newPort).not.toBe(oldPort)
      // The old master stays down until everything is delivered: delivery resumed on the promoted replica.
      await expectExactlyOnce(run, service)
      expect(await sentinel.masterPort()).toBe(newPort)
      // Back as a replica of the new master, for the next test.
      await sentinel.restartNode(oldPort)
    } finally {
      await service.stop('SIGTERM', 15_000)
    }
  }, 120_000)

  it('master stopped mid-send and back before the sentinels fail over: delivery pauses, resumes by itself, 0 lost and 0 duplicates', async () => {
    // The sentinels would wait a minute before failing over: this outage ends first.
    await sentinel.configure('down-after-milliseconds', '60000')
    const { run, service } = await startSending()
    try {
      const port = await sentinel.masterPort()
      await sentinel.nodes.find((n) => n.port === port)!.stop()
      await pausedBy(service)
      const atPause = acceptedWith(run)
      // The outage lasts OUTAGE_MS: at most the requests already past the rate limiter go out meanwhile.
      await sleep(OUTAGE_MS)
      expect(acceptedWith(run) - atPause).toBeLessThanOrEqual(15 * 4)
      expect(acceptedWith(run)).toBeLessThan(TOTAL)
      expect(
        metricSum(await (await fetch(`${service.url}/metrics`)).text(), 'lookstream_destination_redis_available'),
      ).toBe(0)
      await sentinel.restartNode(port)
      await expectExactlyOnce(run, service)
      expect(await sentinel.masterPort()).toBe(port)
    } finally {
      await service.stop('SIGTERM', 15_000)
    }
  }, 120_000)
})
