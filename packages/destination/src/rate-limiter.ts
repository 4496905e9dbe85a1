import type { RedisClient } from '@lookstream/redis'
import { setTimeout as sleep } from 'node:timers/promises'

// GCRA over Redis time, so every replica shares one schedule per (destination, connection). A grant may cost
// more than one unit (an API that counts items: the request is charged its item count, and the next one waits
// until the schedule has paid for it).
//
// `reserve` books a request's place on the schedule in one call: it moves the theoretical arrival time (tat) on
// by the request's cost and answers how long to wait until the booked time. The caller sleeps once and sends;
// the schedule never loses the time a caller spends sleeping, waking late or asking Redis again, so a busy
// schedule runs at its rate (docs/adr/0021-rate-reservations-and-usage-hints.md). A request is booked at most
// `horizon` ms ahead; further out, the answer is how long to wait before asking again (nothing booked). Every
// budget of a request (requests, items) is booked in the same call at the same time. Bookings asked for in the same
// turn of the event loop (a lane starting several requests, responses that arrived together) go to Redis in one
// call that books them one after the other, exactly as separate calls in that order would.
//
// The allowed rate lives beside the schedule: a 429 lowers it (at most once a second, so one burst of 429s from
// parallel requests halves it once) and blocks the connection until the destination's Retry-After; it then
// recovers linearly towards the configured rate. A destination's usage hint caps it at a share of the configured
// rate (`slowTo`); the share recovers linearly too. The effective rate is the lower of the two.
const SCRIPT = `
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function ms(x) return string.format('%.3f', x) end

-- Budget options start at ARGV[base]: max_rate, burst, min_rate, recovery, share_recovery.
local function load(key, base)
  local s = redis.call('HMGET', key, 'tat', 'rate', 'updated', 'blocked', 'lowered', 'share', 'shared')
  local b = { key = key }
  b.max_rate = tonumber(ARGV[base])
  b.burst = tonumber(ARGV[base + 1])
  b.min_rate = tonumber(ARGV[base + 2])
  local recovery = tonumber(ARGV[base + 3])
  local share_recovery = tonumber(ARGV[base + 4])
  b.tat_text = s[1] or ''
  b.tat = tonumber(s[1]) or now
  local updated = tonumber(s[3]) or now
  b.rate = math.min(b.max_rate, (tonumber(s[2]) or b.max_rate) + recovery * math.max(0, now - updated) / 1000)
  b.blocked = tonumber(s[4]) or 0
  b.lowered = tonumber(s[5]) or 0
  local shared = tonumber(s[7]) or now
  b.share = math.min(1, (tonumber(s[6]) or 1) + share_recovery * math.max(0, now - shared) / 1000)
  return b
end

local function effective(b)
  return math.max(b.min_rate, math.min(b.rate, b.max_rate * b.share))
end

local function save(b)
  redis.call('HSET', b.key, 'tat', ms(b.tat), 'rate', b.rate, 'updated', now, 'blocked', b.blocked,
    'lowered', b.lowered, 'share', b.share, 'shared', now)
  redis.call('PEXPIRE', b.key, math.ceil(math.max(b.tat - now, b.blocked - now, 0)) + 3600000)
end

if op == 'penalize' then
  local b = load(KEYS[1], 2)
  local wait_ms = tonumber(ARGV[7])
  local factor = tonumber(ARGV[8])
  if now - b.lowered >= 1000 then
    b.rate = math.max(b.min_rate, b.rate * factor)
    b.lowered = now
  end
  b.blocked = math.max(b.blocked, now + wait_ms)
  save(b)
  return {tostring(effective(b)), ms(b.blocked)}
end

if op == 'acquire' then
  local b = load(KEYS[1], 2)
  local rate = effective(b)
  if b.blocked > now then
    return {math.ceil(b.blocked - now), tostring(rate)}
  end
  local cost = tonumber(ARGV[7]) or 1
  local interval = 1000 / rate
  local tolerance = (b.burst - 1) * interval
  local start = math.max(b.tat, now)
  if start - now > tolerance then
    return {math.max(1, math.ceil(start - now - tolerance)), tostring(rate)}
  end
  b.tat = start + interval * cost
  save(b)
  return {0, tostring(rate)}
end

if op == 'reserve' then
  -- ARGV: op, horizon, count, then per key: max_rate, burst, min_rate, recovery, share_recovery; then per booking,
  -- per key: cost. Books count requests one after the other, each as a call of its own would; the first that
  -- would fall beyond the horizon ends the answer with how long to wait (it and the rest are not booked).
  local horizon = tonumber(ARGV[2])
  local count = tonumber(ARGV[3])
  local budgets = {}
  for i, key in ipairs(KEYS) do
    local b = load(key, 4 + (i - 1) * 5)
    b.interval = 1000 / effective(b)
    budgets[i] = b
  end
  local costs = 4 + #KEYS * 5
  local answer = {}
  local booked = 0
  for n = 1, count do
    local send_at = now
    for _, b in ipairs(budgets) do
      send_at = math.max(send_at, b.blocked, b.tat - (b.burst - 1) * b.interval)
    end
    if send_at - now > horizon then
      answer[#answer + 1] = 0
      answer[#answer + 1] = ms(send_at - now - horizon)
      break
    end
    answer[#answer + 1] = 1
    answer[#answer + 1] = ms(send_at - now)
    answer[#answer + 1] = ms(send_at)
    for i, b in ipairs(budgets) do
      local before = b.tat_text
      b.tat = math.max(b.tat, send_at) + b.interval * tonumber(ARGV[costs + (n - 1) * #KEYS + i - 1])
      b.tat_text = ms(b.tat)
      answer[#answer + 1] = b.tat_text
      answer[#answer + 1] = before
      answer[#answer + 1] = tostring(1000 / b.interval)
    end
    booked = booked + 1
  end
  if booked > 0 then
    for _, b in ipairs(budgets) do save(b) end
  end
  return answer
end

if op == 'release' then
  -- ARGV: op, then per key: the tat the reservation left, the tat before it. Only the latest booking can be
  -- given back: a later one was placed after it and stays where it is.
  local released = 0
  for i, key in ipairs(KEYS) do
    local booked = ARGV[2 + (i - 1) * 2]
    local before = ARGV[3 + (i - 1) * 2]
    if redis.call('HGET', key, 'tat') == booked then
      if before == '' then redis.call('HDEL', key, 'tat') else redis.call('HSET', key, 'tat', before) end
      released = released + 1
    end
  end
  return released
end

if op == 'share' then
  -- ARGV: op, share, then per key the five options.
  local target = tonumber(ARGV[2])
  local rates = {}
  for i, key in ipairs(KEYS) do
    local b = load(key, 3 + (i - 1) * 5)
    b.share = math.min(b.share, target)
    save(b)
    rates[i] = tostring(effective(b))
  end
  return rates
end
return redis.error_reply('unknown rate-limit operation')
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
  /** Share of the configured rate regained per second after a usage hint lowered it (default 0.1). */
  shareRecoveryPerSecond?: number
  /**
   * A request that wakes more than this many ms after its booked time is booked again rather than sent: sent
   * late, it would reach the destination closer to the next booked request than the schedule spaces them
   * (default: sent however late).
   */
  maxLateMs?: number
}

export interface Acquisition {
  waitMs: number
  rate: number
}

/** One budget a request draws on, and what the request costs in it. */
export interface Budget {
  key: string
  options: RateLimitOptions
  cost: number
}

export interface Reservation {
  /** Milliseconds between the first ask and the booked time. */
  waitedMs: number
  /** The booked time, on Redis' clock (epoch ms). */
  sendAt: number
  /** The effective rate of each budget when the request was booked, in the budgets' order. */
  rates: number[]
  /** Bookings given up on the way because the caller woke more than `maxLateMs` after them. */
  late: number
}

export type Booking =
  | { booked: false; retryInMs: number }
  | {
      booked: true
      /** Milliseconds until the booked time. */
      waitMs: number
      /** The booked time, on Redis' clock (epoch ms). */
      sendAt: number
      keys: string[]
      /** Per budget: the schedule's time after the booking and before it (what `release` compares and restores). */
      bookings: string[]
      rates: number[]
    }

/** How far ahead a request may be booked (ms): past it the caller waits and asks again. */
export const RESERVATION_HORIZON_MS = 1000

type RateLimitCommand = (keys: number, ...args: (string | number)[]) => Promise<unknown>

/** Bookings asked for together in one script call, for the same budgets: per booking its costs, in key order. */
interface BookingGroup {
  keys: string[]
  options: (string | number)[]
  horizonMs: number
  costs: number[]
  waiters: { resolve: (booking: Booking) => void; reject: (err: unknown) => void }[]
}

/** Most bookings one script call makes (a longer run of asks is split into several calls). */
const MAX_BOOKINGS_PER_CALL = 64

export class RateLimiter {
  readonly #run: RateLimitCommand
  /** Bookings asked for in this turn of the event loop, per schedule (budgets, options, horizon). */
  readonly #gathering = new Map<string, BookingGroup>()
  /** Full groups of this turn, waiting for the same call-out as `#gathering`. */
  readonly #groups: BookingGroup[] = []
  #scheduled = false
  /** Per key, the end (Redis time, ms) of the latest block this process set after a 429. */
  readonly #blockedUntil = new Map<string, number>()
  /** Per key, the latest share applied from this process and when (local ms), to skip repeating it. */
  readonly #applied = new Map<string, { share: number; at: number }>()

  constructor(redis: RedisClient) {
    // defineCommand runs EVALSHA and falls back to EVAL once per connection when the script is unknown.
    if (!('lookstreamRateLimit3' in redis)) redis.defineCommand('lookstreamRateLimit3', { lua: SCRIPT })
    const command = (redis as unknown as { lookstreamRateLimit3: RateLimitCommand }).lookstreamRateLimit3
    this.#run = command.bind(redis)
  }

  // One key per schedule, hash-tagged so that the item budget (`<key>:items`) shares its slot: every budget of
  // a request is booked in one script call.
  static key(destination: string, connection: string): string {
    return `lookstream:ratelimit:{${destination}:${connection}}`
  }

  #args(options: RateLimitOptions): (string | number)[] {
    const minRps = options.minRps ?? Math.max(0.1, options.rps / 20)
    return [
      options.rps,
      options.burst ?? 1,
      minRps,
      options.recoveryRpsPerSecond ?? Math.max(0.05, options.rps / 60),
      options.shareRecoveryPerSecond ?? 0.1,
    ]
  }

  /** One attempt: 0 when the request may go now, else the milliseconds to wait before asking again. */
  async tryAcquire(key: string, options: RateLimitOptions, cost = 1): Promise<Acquisition> {
    const [waitMs, rate] = (await this.#run(1, key, 'acquire', ...this.#args(options), cost)) as [number, string]
    return { waitMs: Number(waitMs), rate: Number(rate) }
  }

  /** Waits (never fails) until a request may go; resolves with the total time waited. */
  async acquire(key: string, options: RateLimitOptions, signal?: AbortSignal, cost = 1): Promise<number> {
    return (await this.reserve([{ key, options, cost }], signal)).waitedMs
  }

  /**
   * One booking attempt on every budget of a request at once: either booked (the request goes in `waitMs`, at
   * `sendAt` on Redis' clock) or not (the next free time is more than `horizonMs` ahead: ask again in
   * `retryInMs`). Attempts made in the same turn of the event loop for the same budgets are booked in one call,
   * in the order they were asked.
   */
  book(budgets: readonly Budget[], horizonMs = RESERVATION_HORIZON_MS): Promise<Booking> {
    const keys = budgets.map((b) => b.key)
    const options = budgets.flatMap((b) => this.#args(b.options))
    const schedule = `${horizonMs}\u0000${keys.join('\u0000')}\u0000${options.join(',')}`
    return new Promise<Booking>((resolve, reject) => {
      let group = this.#gathering.get(schedule)
      if (group === undefined || group.waiters.length >= MAX_BOOKINGS_PER_CALL) {
        if (group !== undefined) this.#groups.push(group)
        group = { keys, options, horizonMs, costs: [], waiters: [] }
        this.#gathering.set(schedule, group)
      }
      for (const budget of budgets) group.costs.push(budget.cost)
      group.waiters.push({ resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => this.#bookGathered())
      }
    })
  }

  #bookGathered(): void {
    this.#scheduled = false
    const groups = [...this.#groups, ...this.#gathering.values()]
    this.#groups.length = 0
    this.#gathering.clear()
    for (const group of groups) void this.#bookGroup(group)
  }

  async #bookGroup(group: BookingGroup): Promise<void> {
    const { keys, waiters } = group
    let answer: string[]
    try {
      answer = (await this.#run(
        keys.length,
        ...keys,
        'reserve',
        group.horizonMs,
        waiters.length,
        ...group.options,
        ...group.costs,
      )) as string[]
    } catch (err) {
      for (const waiter of waiters) waiter.reject(err)
      return
    }
    let at = 0
    for (const waiter of waiters) {
      if (at >= answer.length) {
        // The script answers every booking or ends with one not booked: anything shorter is not its answer.
        waiter.reject(new Error(`rate-limit script answered ${answer.length} fields for ${waiters.length} bookings`))
        continue
      }
      if (Number(answer[at]) === 0) {
        // Not booked: neither is any later one of the group (each would come after it).
        waiter.resolve({ booked: false, retryInMs: Number(answer[at + 1]) })
        continue
      }
      const bookings: string[] = []
      const rates: number[] = []
      for (let i = 0; i < keys.length; i++) {
        bookings.push(answer[at + 3 + i * 3]!, answer[at + 4 + i * 3]!)
        rates.push(Number(answer[at + 5 + i * 3]))
      }
      waiter.resolve({
        booked: true,
        waitMs: Number(answer[at + 1]),
        sendAt: Number(answer[at + 2]),
        keys,
        bookings,
        rates,
      })
      at += 3 + keys.length * 3
    }
  }

  /**
   * Books the request's place on every budget's schedule and sleeps until it: resolves when the request may go.
   * Aborted (shutdown) while sleeping, it gives the booking back when no later one was made, and rejects. A
   * booking made before a 429 this process reported for the same schedule is given back and made again after
   * the block.
   */
  async reserve(
    budgets: readonly Budget[],
    signal?: AbortSignal,
    horizonMs = RESERVATION_HORIZON_MS,
  ): Promise<Reservation> {
    let waitedMs = 0
    let late = 0
    const maxLateMs = Math.min(...budgets.map((b) => b.options.maxLateMs ?? Infinity))
    for (;;) {
      signal?.throwIfAborted()
      const booking = await this.book(budgets, horizonMs)
      if (!booking.booked) {
        await sleep(booking.retryInMs, undefined, { signal })
        waitedMs += booking.retryInMs
        continue
      }
      const due = performance.now() + booking.waitMs
      if (booking.waitMs > 0) {
        try {
          await sleep(booking.waitMs, undefined, { signal })
        } catch (err) {
          await this.release(booking)
          throw err
        }
        waitedMs += booking.waitMs
      }
      if (booking.keys.some((key) => (this.#blockedUntil.get(key) ?? 0) > booking.sendAt)) {
        await this.release(booking)
        continue
      }
      if (performance.now() - due > maxLateMs) {
        late++
        await this.release(booking)
        continue
      }
      return { waitedMs, sendAt: booking.sendAt, rates: booking.rates, late }
    }
  }

  /**
   * Gives a booking back where it is still the latest on its schedule (a later one stays where it is). Best
   * effort, waiting at most one second: a booking not given back only leaves its slot unused. Resolves with
   * the number of budgets given back (0 when Redis did not answer in time).
   */
  async release(booking: Extract<Booking, { booked: true }>): Promise<number> {
    const { keys, bookings } = booking
    const release = this.#run(keys.length, ...keys, 'release', ...bookings).then(Number, () => 0)
    const timer = sleep(1000, 0, { ref: false })
    return Promise.race([release, timer])
  }

  /** After a 429: lower the shared rate and block every replica until the destination's wait elapsed. */
  async penalize(key: string, options: RateLimitOptions, retryAfterMs: number): Promise<number> {
    const [rate, blockedUntil] = (await this.#run(
      1,
      key,
      'penalize',
      ...this.#args(options),
      Math.max(0, Math.ceil(retryAfterMs)),
      options.decreaseFactor ?? 0.5,
    )) as [string, string]
    this.#blockedUntil.set(key, Math.max(this.#blockedUntil.get(key) ?? 0, Number(blockedUntil)))
    return Number(rate)
  }

  /**
   * A usage hint: caps the shared rate of these budgets at `share` (0 < share ≤ 1) of their configured rates;
   * the cap then recovers by `shareRecoveryPerSecond`. Resolves with the effective rates. The same or a higher
   * share sent again from this process within 200 ms is skipped (no Redis call; resolves with an empty list).
   */
  async slowTo(budgets: readonly Omit<Budget, 'cost'>[], share: number): Promise<number[]> {
    if (!(share > 0 && share <= 1)) throw new RangeError(`a rate share must be in (0, 1], got ${share}`)
    const now = performance.now()
    const first = budgets[0]
    if (first === undefined) return []
    const last = this.#applied.get(first.key)
    if (last !== undefined && now - last.at < 200 && share >= last.share) return []
    this.#applied.set(first.key, { share, at: now })
    const keys = budgets.map((b) => b.key)
    const rates = (await this.#run(
      keys.length,
      ...keys,
      'share',
      share,
      ...budgets.flatMap((b) => this.#args(b.options)),
    )) as string[]
    return rates.map(Number)
  }
}
