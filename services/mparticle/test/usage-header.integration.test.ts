import { newRunId, produceMessages } from '@lookstream/delivery-testing'
import { runDestination, type RunningDestination } from '@lookstream/destination'
import { startAccountLoad, type AccountLoadResult } from '@lookstream/simulators'
import { waitFor } from '@lookstream/testing'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mparticle, sourceId } from '../src/mparticle.ts'
import {
  API_KEY,
  API_SECRET,
  mparticleEnv,
  profile,
  startMparticleStack,
  type MparticleStack,
} from './mparticle-stack.ts'

// The account's limit scaled down from 270 to 100 batches per second (the service schedules 97/s in requests of
// 3); another client of the same account sends 30 batches per second.
const LIMIT = 100
const OTHERS = 30

let stack: MparticleStack
const running: RunningDestination[] = []

beforeAll(async () => {
  stack = await startMparticleStack({ rateLimit: { limit: LIMIT, windowMs: 1000 } })
}, 60_000)

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()))
  stack.simulator.reset()
})

afterAll(async () => {
  await stack.stop()
})

interface Outcome {
  /** 429s the service drew (the simulator's, less the other client's). */
  service429s: number
  others: AccountLoadResult
  /** The service's batches per second while the other client sent, and after it stopped. */
  rateWithOthers: number
  rateAfter: number
  service: RunningDestination
}

/** `total` rows through the service while the other client sends for the first `withOthers` of them. */
async function send(total: number, withOthers: number, usageHeader: boolean): Promise<Outcome> {
  const run = newRunId()
  const ids = Array.from({ length: total }, (_, i) => sourceId(`${run}-${i}`))
  const acceptedCount = () => ids.filter((id) => stack.simulator.state.acceptedIds.has(id)).length
  const others = startAccountLoad({
    url: `${stack.simulator.url}/v2`,
    key: API_KEY,
    secret: API_SECRET,
    batchesPerSecond: OTHERS,
    batchesPerRequest: 3,
  })
  let stopped: Promise<AccountLoadResult> | undefined
  try {
    const service = await runDestination(mparticle, {
      env: mparticleEnv(stack, {
        MPARTICLE_BATCHES_PER_SECOND: String(LIMIT),
        MPARTICLE_USAGE_HEADER: String(usageHeader),
      }),
    })
    running.push(service)
    await produceMessages(
      stack,
      Array.from({ length: total }, (_, i) => profile(run, i)),
    )
    await waitFor(() => acceptedCount() >= withOthers, { timeoutMs: 90_000, message: `${withOthers} accepted` })
    stopped = others.stop()
    const othersResult = await stopped
    const stoppedAt = performance.timeOrigin + performance.now()
    await waitFor(() => acceptedCount() === total, { timeoutMs: 90_000, message: `${total} accepted` })
    const times = ids.map((id) => stack.simulator.state.acceptedIds.get(id)!).sort((a, b) => a - b)
    const during = times.filter((t) => t < stoppedAt)
    const after = times.filter((t) => t >= stoppedAt + 1000)
    const rate = (list: number[]) => ((list.length - 1) * 1000) / (list.at(-1)! - list[0]!)
    return {
      service429s: (stack.simulator.state.counters.requestsByStatus['429'] ?? 0) - othersResult.tooMany,
      others: othersResult,
      rateWithOthers: rate(during),
      rateAfter: rate(after),
      service,
    }
  } finally {
    if (stopped === undefined) await others.stop()
  }
}

describe('mparticle service and X-mp-rate-limit-percentage-used', () => {
  it('another client of the account uses 30 % of its limit: reading the header, the service slows down before the 429s and recovers after; ignoring it, it draws 429s', async () => {
    const read = await send(1000, 500, true)
    const hints = await read.service.service.registry.getSingleMetric('lookstream_destination_rate_hints_total')?.get()
    stack.simulator.reset()
    await Promise.all(running.splice(0).map((r) => r.close()))
    const ignored = await send(1000, 500, false)

    const figures = (o: Outcome) =>
      `${o.service429s} 429s, ${o.rateWithOthers.toFixed(1)} batches/s with the other client, ${o.rateAfter.toFixed(1)} after`
    process.stderr.write(`usage header read: ${figures(read)}; ignored: ${figures(ignored)}\n`)
    // Reading the header: slowed to what the other client leaves (≈ 97 − 30 − 2 of 97).
    expect(hints?.values[0]?.value).toBeGreaterThan(0)
    expect(read.rateWithOthers).toBeLessThan(LIMIT - OTHERS + 5)
    // Ignoring it, the account overflows (97 + 30 > 100 batches/s) until a 429 halves the service's rate (which
    // then takes long to recover); reading it, the service slows down first.
    expect(ignored.service429s).toBeGreaterThanOrEqual(1)
    expect(read.service429s).toBeLessThan(ignored.service429s)
    // After the other client stopped, the cap recovers: the rate climbs back towards the schedule.
    expect(read.rateAfter).toBeGreaterThan(read.rateWithOthers * 1.15)
  }, 240_000)
})
