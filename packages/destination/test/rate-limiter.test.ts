import { startRedis, waitFor } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RateLimiter } from '../src/rate-limiter.ts'

let redis: Awaited<ReturnType<typeof startRedis>>
const clients: Redis[] = []

function client(): Redis {
  const c = new Redis(redis.url, { lazyConnect: false })
  clients.push(c)
  return c
}

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit()))
  await redis.stop()
})

describe('RateLimiter (GCRA in Redis)', () => {
  it('spaces requests at the configured rate', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `spacing-${Date.now()}`)
    const first = await limiter.tryAcquire(key, { rps: 10 })
    const second = await limiter.tryAcquire(key, { rps: 10 })
    expect(first.waitMs).toBe(0)
    expect(second.waitMs).toBeGreaterThan(50)
    expect(second.waitMs).toBeLessThanOrEqual(100)
  })

  it('makes two limiter clients share one budget', async () => {
    const a = new RateLimiter(client())
    const b = new RateLimiter(client())
    const key = RateLimiter.key('test', `shared-${Date.now()}`)
    const rps = 20
    const granted: number[] = []
    const started = performance.now()
    const run = async (limiter: RateLimiter) => {
      while (performance.now() - started < 1000) {
        await limiter.acquire(key, { rps })
        granted.push(performance.now() - started)
      }
    }
    await Promise.all([run(a), run(b)])
    // 1 s at 20/s through two clients: about 20 in total (not 40), the first one immediately.
    const inFirstSecond = granted.filter((t) => t < 1000).length
    expect(inFirstSecond).toBeGreaterThanOrEqual(17)
    expect(inFirstSecond).toBeLessThanOrEqual(22)
  })

  it('blocks every client until Retry-After after a 429, and lowers then recovers the rate', async () => {
    const a = new RateLimiter(client())
    const b = new RateLimiter(client())
    const key = RateLimiter.key('test', `penalty-${Date.now()}`)
    const options = { rps: 100, recoveryRpsPerSecond: 100 }
    const lowered = await a.penalize(key, options, 300)
    expect(lowered).toBe(50)
    const blocked = await b.tryAcquire(key, options)
    expect(blocked.waitMs).toBeGreaterThan(200)
    expect(blocked.waitMs).toBeLessThanOrEqual(300)
    await sleep(blocked.waitMs + 50)
    const after = await b.tryAcquire(key, options)
    expect(after.waitMs).toBe(0)
    // 100 rps regained per second: after ~0.35 s the rate is back near the ceiling, never above it.
    expect(after.rate).toBeGreaterThan(80)
    expect(after.rate).toBeLessThanOrEqual(100)
  })

  it('lets a burst of requests go at once and holds every window to rate × t + burst', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `request-burst-${Date.now()}`)
    const options = { rps: 50, burst: 10 }
    const reservations = await Promise.all(
      Array.from({ length: 40 }, () => limiter.reserve([{ key, options, cost: 1 }])),
    )
    const times = reservations.map((r) => r.sendAt).sort((a, b) => a - b)
    // The first ten share the first one's time; from then on one every 20 ms (Redis' clock, as booked).
    expect(times.filter((t) => t === times[0]).length).toBe(10)
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(30 * 20 - 1)
    for (const start of times) {
      const inWindow = times.filter((t) => t >= start && t < start + 300).length
      expect(inWindow).toBeLessThanOrEqual(50 * 0.3 + 10)
    }
  })

  it('lowers the rate once for a burst of 429s, not once per response', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `burst-${Date.now()}`)
    const options = { rps: 100, recoveryRpsPerSecond: 0.001 }
    const rates = await Promise.all([1, 2, 3, 4].map(() => limiter.penalize(key, options, 10)))
    expect(Math.min(...rates)).toBeGreaterThan(49)
  })
})

describe('RateLimiter reservations', () => {
  const tatOf = async (key: string) => Number(await client().hget(key, 'tat'))

  it('books concurrent requests back to back on the schedule: each one at the previous one plus its cost, however late its caller wakes', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `reserve-${Date.now()}`)
    const budget = { key, options: { rps: 100 }, cost: 2 }
    const sendAts: number[] = []
    // Eight callers, as a connection's requests in flight: each sends (simulated by 15 ms of work) and books
    // the next one; whoever wakes late does not move anyone's slot.
    await Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7].map(async () => {
        for (let i = 0; i < 4; i++) {
          sendAts.push((await limiter.reserve([budget])).sendAt)
          await sleep(15)
        }
      }),
    )
    sendAts.sort((a, b) => a - b)
    const gaps = sendAts.slice(1).map((at, i) => at - sendAts[i]!)
    // 2 units at 100/s: 20 ms apart, to the microsecond the schedule keeps.
    for (const gap of gaps) expect(gap).toBeCloseTo(20, 2)
    expect(await tatOf(key)).toBeCloseTo(sendAts.at(-1)! + 20, 2)
  })

  it('books every budget of a request in one call, at the time the slowest one allows', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `budgets-${Date.now()}`)
    const budgets = [
      { key, options: { rps: 10 }, cost: 1 },
      { key: `${key}:items`, options: { rps: 100 }, cost: 20 },
    ]
    const first = await limiter.book(budgets)
    const second = await limiter.book(budgets)
    expect(first.booked && second.booked).toBe(true)
    if (!first.booked || !second.booked) return
    // Requests: 100 ms apart; items: 20 at 100/s = 200 ms. The second request waits for the items.
    expect(second.sendAt - first.sendAt).toBeCloseTo(200, 2)
    expect(await tatOf(key)).toBeCloseTo(second.sendAt + 100, 2)
    expect(await tatOf(`${key}:items`)).toBeCloseTo(second.sendAt + 200, 2)
    expect(second.rates).toEqual([10, 100])
  })

  it('books the requests asked for in one turn of the event loop in one script call, one after the other, up to the horizon', async () => {
    const redisClient = client()
    const limiter = new RateLimiter(redisClient)
    const key = RateLimiter.key('test', `together-${Date.now()}`)
    const budgets = [
      { key, options: { rps: 20 }, cost: 1 },
      { key: `${key}:items`, options: { rps: 1000 }, cost: 10 },
    ]
    const scriptCalls = async () => {
      const stats = await redisClient.info('commandstats')
      return (
        Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) +
        Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0)
      )
    }
    await limiter.book([{ key: RateLimiter.key('test', `warm-${Date.now()}`), options: { rps: 1 }, cost: 1 }])
    const before = await scriptCalls()
    // Six asks at once with a 220 ms horizon: 50 ms apart, the fifth and sixth would be 200 and 250 ms out.
    const bookings = await Promise.all(Array.from({ length: 6 }, () => limiter.book(budgets, 220)))
    // The asks and the INFO calls themselves: one script call for the six.
    expect((await scriptCalls()) - before).toBe(1)
    const booked = bookings.filter((b) => b.booked)
    expect(booked).toHaveLength(5)
    expect(bookings.slice(0, 5).every((b) => b.booked)).toBe(true)
    const sendAts = booked.map((b) => (b.booked ? b.sendAt : NaN))
    for (let i = 1; i < sendAts.length; i++) expect(sendAts[i]! - sendAts[i - 1]!).toBeCloseTo(50, 2)
    const last = bookings[5]!
    expect(last.booked).toBe(false)
    expect(last.booked ? 0 : last.retryInMs).toBeGreaterThan(0)
    expect(last.booked ? Infinity : last.retryInMs).toBeLessThanOrEqual(30)
    // Each booking carries what `release` needs: the schedule after it and before it, per budget.
    const second = bookings[1]!
    const first = bookings[0]!
    expect(first.booked && second.booked).toBe(true)
    if (first.booked && second.booked) {
      expect(second.bookings[1]).toBe(first.bookings[0])
      expect(second.bookings[3]).toBe(first.bookings[2])
      expect(second.rates).toEqual([20, 1000])
    }
    expect(await tatOf(key)).toBeCloseTo(sendAts.at(-1)! + 50, 2)
    expect(await tatOf(`${key}:items`)).toBeCloseTo(sendAts.at(-1)! + 10, 2)
  })

  it('books nothing beyond the horizon: the caller is told when to ask again', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `horizon-${Date.now()}`)
    const budget = { key, options: { rps: 2 }, cost: 1 }
    const first = await limiter.book([budget], 100)
    const before = await client().hget(key, 'tat')
    const second = await limiter.book([budget], 100)
    expect(first.booked).toBe(true)
    expect(second.booked).toBe(false)
    if (second.booked) return
    // The next slot is 500 ms out; within the 100 ms horizon from 400 ms on.
    expect(second.retryInMs).toBeGreaterThan(300)
    expect(second.retryInMs).toBeLessThanOrEqual(400)
    expect(await client().hget(key, 'tat')).toBe(before)
  })

  it('gives its booking back when aborted while waiting (shutdown), so the next request takes that slot', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `release-${Date.now()}`)
    const budget = { key, options: { rps: 5 }, cost: 1 }
    const first = await limiter.reserve([budget])
    const controller = new AbortController()
    const waiting = limiter.reserve([budget], controller.signal)
    await waitFor(async () => (await tatOf(key)) > first.sendAt + 200 + 100, { message: 'second request booked' })
    controller.abort()
    await expect(waiting).rejects.toThrow()
    expect(await tatOf(key)).toBeCloseTo(first.sendAt + 200, 2)
    const next = await limiter.book([budget])
    expect(next.booked && next.sendAt).toBeCloseTo(first.sendAt + 200, 2)
  })

  it('leaves a booking with a later one after it where it is: only the latest can be given back', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `release-middle-${Date.now()}`)
    const budget = { key, options: { rps: 5 }, cost: 1 }
    await limiter.book([budget])
    const middle = await limiter.book([budget])
    const last = await limiter.book([budget])
    if (!middle.booked || !last.booked) throw new Error('bookings expected')
    expect(await limiter.release(middle)).toBe(0)
    expect(await tatOf(key)).toBeCloseTo(last.sendAt + 200, 2)
    expect(await limiter.release(last)).toBe(1)
    expect(await tatOf(key)).toBeCloseTo(middle.sendAt + 200, 2)
  })

  it("a booking made before this process's 429 goes after the block instead", async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `rebook-${Date.now()}`)
    const options = { rps: 2, recoveryRpsPerSecond: 0.001 }
    const first = await limiter.reserve([{ key, options, cost: 1 }])
    const waiting = limiter.reserve([{ key, options, cost: 1 }])
    // The second request is booked 500 ms after the first; a 429 answered meanwhile blocks for 1.5 s.
    await waitFor(async () => (await tatOf(key)) > first.sendAt + 750, { message: 'second request booked' })
    await limiter.penalize(key, options, 1500)
    const blocked = Number(await client().hget(key, 'blocked'))
    const reservation = await waiting
    expect(reservation.sendAt).toBeGreaterThanOrEqual(blocked)
    // Booked again at the lowered rate (2 → 1/s).
    expect(reservation.rates[0]).toBeCloseTo(1, 2)
  })

  it('caps every budget at the share a usage hint asks for, then recovers towards the configured rate', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `share-${Date.now()}`)
    const budgets = [
      { key, options: { rps: 100, shareRecoveryPerSecond: 0.5 } },
      { key: `${key}:items`, options: { rps: 1000, shareRecoveryPerSecond: 0.5 } },
    ]
    const capped = await limiter.slowTo(budgets, 0.4)
    expect(capped[0]).toBeCloseTo(40, 0)
    expect(capped[1]).toBeCloseTo(400, -1)
    // The same share again within 200 ms: nothing to do.
    expect(await limiter.slowTo(budgets, 0.4)).toEqual([])
    const later = await limiter.book(budgets.map((b) => ({ ...b, cost: 1 })))
    if (!later.booked) throw new Error('booking expected')
    expect(later.rates[0]).toBeGreaterThanOrEqual(40)
    await sleep(400)
    // 0.5 of the rate regained per second: after ≥ 0.4 s, at least 0.6 of it.
    const recovered = await limiter.book(
      budgets.map((b) => ({ ...b, cost: 1 })),
      10_000,
    )
    if (!recovered.booked) throw new Error('booking expected')
    expect(recovered.rates[0]).toBeGreaterThanOrEqual(60)
    expect(recovered.rates[0]).toBeLessThanOrEqual(100)
    await expect(limiter.slowTo(budgets, 0)).rejects.toThrow(RangeError)
    await expect(limiter.slowTo(budgets, 1.5)).rejects.toThrow(RangeError)
  })
})
