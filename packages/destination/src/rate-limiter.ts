import type { RedisClient } from '@lookstream/redis'
import { setTimeout as sleep } from 'node:timers/promises'

// GCRA over Redis time, so every replica shares one schedule per (destination, connection). A grant may cost
// more than one unit (an API that counts items: the request is charged its item count, and the next one waits
// until the schedule has paid for it). The allowed rate
// lives beside the schedule: a 429 lowers it (at most once a second, so one burst of 429s from parallel
// requests halves it once) and blocks the connection until the destination's Retry-After; it then recovers
// linearly towards the configured rate.
const SCRIPT = `
local key = KEYS[1]
local op = ARGV[1]
local max_rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local min_rate = tonumber(ARGV[4])
local recovery = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', key, 'tat', 'rate', 'updated', 'blocked', 'lowered')
local tat = tonumber(state[1]) or now
local rate = tonumber(state[2]) or max_rate
local updated = tonumber(state[3]) or now
local blocked = tonumber(state[4]) or 0
local lowered = tonumber(state[5]) or 0
rate = math.min(max_rate, rate + recovery * math.max(0, now - updated) / 1000)
if op == 'penalize' then
  local wait_ms = tonumber(ARGV[6])
  local factor = tonumber(ARGV[7])
  if now - lowered >= 1000 then
    rate = math.max(min_rate, rate * factor)
    lowered = now
  end
  blocked = math.max(blocked, now + wait_ms)
  redis.call('HSET', key, 'rate', rate, 'updated', now, 'blocked', blocked, 'lowered', lowered)
  redis.call('PEXPIRE', key, math.ceil(math.max(blocked - now, 0)) + 3600000)
  return {0, tostring(rate)}
end
if blocked > now then
  return {math.ceil(blocked - now), tostring(rate)}
end
local cost = tonumber(ARGV[6]) or 1
local interval = 1000 / rate
local tolerance = (burst - 1) * interval
local start = math.max(tat, now)
if start - now > tolerance then
  return {math.max(1, math.ceil(start - now - tolerance)), tostring(rate)}
end
redis.call('HSET', key, 'tat', start + interval * cost, 'rate', rate, 'updated', now)
redis.call('PEXPIRE', key, math.ceil(start + interval * cost - now) + 3600000)
return {0, tostring(rate)}
`

export interface RateLimitOptions {
  /** Configured requests per second: the ceiling the rate recovers to. */
  rps: number
  /** Requests that may go back to back before spacing applies (1 = strictly spaced). */
  burst?: number
  /** Floor for the lowered rate. */
  minRps?: number
  /** Requests per second regained per second after a 429. */
  recoveryRpsPerSecond?: number
  /** Multiplier applied to the rate on a 429. */
  decreaseFactor?: number
}

export interface Acquisition {
  waitMs: number
  rate: number
}

type RateLimitCommand = (key: string, ...args: (string | number)[]) => Promise<[number, string]>

export class RateLimiter {
  readonly #run: RateLimitCommand

  constructor(redis: RedisClient) {
    // defineCommand runs EVALSHA and falls back to EVAL once per connection when the script is unknown.
    if (!('lookstreamRateLimit' in redis)) redis.defineCommand('lookstreamRateLimit', { numberOfKeys: 1, lua: SCRIPT })
    const command = (redis as unknown as { lookstreamRateLimit: RateLimitCommand }).lookstreamRateLimit
    this.#run = command.bind(redis)
  }

  // One key per schedule, hash-tagged anyway so that a future second key of the same schedule shares its slot.
  static key(destination: string, connection: string): string {
    return `lookstream:ratelimit:{${destination}:${connection}}`
  }

  #args(options: RateLimitOptions): (string | number)[] {
    const minRps = options.minRps ?? Math.max(0.1, options.rps / 20)
    return [options.rps, options.burst ?? 1, minRps, options.recoveryRpsPerSecond ?? Math.max(0.05, options.rps / 60)]
  }

  /** One attempt: 0 when the request may go now, else the milliseconds to wait before asking again. */
  async tryAcquire(key: string, options: RateLimitOptions, cost = 1): Promise<Acquisition> {
    const [waitMs, rate] = await this.#run(key, 'acquire', ...this.#args(options), cost)
    return { waitMs: Number(waitMs), rate: Number(rate) }
  }

  /** Waits (never fails) until a request may go; resolves with the total time waited. */
  async acquire(key: string, options: RateLimitOptions, signal?: AbortSignal, cost = 1): Promise<number> {
    let waited = 0
    for (;;) {
      const { waitMs } = await this.tryAcquire(key, options, cost)
      if (waitMs === 0) return waited
      signal?.throwIfAborted()
      await sleep(waitMs, undefined, { signal })
      waited += waitMs
    }
  }

  /** After a 429: lower the shared rate and block every replica until the destination's wait elapsed. */
  async penalize(key: string, options: RateLimitOptions, retryAfterMs: number): Promise<number> {
    const [, rate] = await this.#run(
      key,
      'penalize',
      ...this.#args(options),
      Math.max(0, Math.ceil(retryAfterMs)),
      options.decreaseFactor ?? 0.5,
    )
    return Number(rate)
  }
}
