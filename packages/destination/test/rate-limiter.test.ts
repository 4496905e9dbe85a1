import { startRedis } from '@lookstream/testing'
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

  it('lowers the rate once for a burst of 429s, not once per response', async () => {
    const limiter = new RateLimiter(client())
    const key = RateLimiter.key('test', `burst-${Date.now()}`)
    const options = { rps: 100, recoveryRpsPerSecond: 0.001 }
    const rates = await Promise.all([1, 2, 3, 4].map(() => limiter.penalize(key, options, 10)))
    expect(Math.min(...rates)).toBeGreaterThan(49)
  })
})
