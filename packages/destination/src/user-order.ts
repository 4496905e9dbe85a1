import type { RedisClient } from '@lookstream/redis'
import { createHash, randomBytes } from 'node:crypto'
import { RUNTIME_HEADERS } from './failure-headers.ts'

// Per-user order for destinations whose items are state (docs/adr/0022-per-user-order.md). A user is the
// message's Kafka key (the ingress keys by userId, else anonymousId; groupId for group), identified here only by
// a hash of it. While a message of a user is parked in the retry topic, the user is "parked": a later message of
// the user is parked behind it instead of being delivered. Parked messages carry a ticket (the mark's epoch and
// their place in it); only the lowest outstanding one may be delivered. The mark is given up (the user is
// released) after a time box or when too many messages of the user are parked, so one broken user cannot hold
// anything for long; order is then not kept for that user's messages parked so far.

/** The header of a parked message of an ordered destination: `<epoch>.<seq>` (no row value). */
export const ORDER_HEADER = RUNTIME_HEADERS.orderTicket

// One script for the three operations, so each is one round trip and atomic across replicas. Every key carries
// the hash tag {order:<destination>}: on Redis Cluster the marks and their deadlines share one slot.
// KEYS[1]: hash user → "epoch:issued:done"; KEYS[2]: sorted set user → release deadline (ms, Redis time).
// Before each operation, marks past their deadline are removed (released by time).
// Reply: { releasedByTime, parkedUsers, releasedByLimit, refusedAtCapacity, newlyParked, result... }.
const SCRIPT = `
local marks = KEYS[1]
local deadlines = KEYS[2]
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', deadlines, '-inf', now, 'LIMIT', 0, 1000)
if #expired > 0 then
  redis.call('HDEL', marks, unpack(expired))
  redis.call('ZREM', deadlines, unpack(expired))
end
local function parse(value)
  local epoch, issued, done = string.match(value, '^([^:]+):(%d+):(%d+)$')
  return epoch, tonumber(issued), tonumber(done)
end
local results = {}
local limited, refused, created = 0, 0, 0
if op == 'probe' then
  -- Nothing but the count of parked users (in the reply's header): zero means no user has a mark.
elseif op == 'lookup' then
  for i = 2, #ARGV do
    results[#results + 1] = redis.call('HGET', marks, ARGV[i]) or ''
  end
elseif op == 'park' then
  local release_ms = tonumber(ARGV[2])
  local max_parked = tonumber(ARGV[3])
  local max_users = tonumber(ARGV[4])
  local seed = ARGV[5]
  for i = 6, #ARGV, 3 do
    local user, epoch_in, seq_in = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    local value = redis.call('HGET', marks, user)
    if epoch_in ~= '' then
      -- Parked again: it keeps its place, or stays unordered once its user's mark is gone (released).
      local epoch, issued = nil, 0
      if value then epoch, issued = parse(value) end
      if epoch == epoch_in and seq_in <= issued then
        results[#results + 1] = epoch .. '.' .. seq_in
      else
        results[#results + 1] = ''
      end
    elseif value then
      local epoch, issued, done = parse(value)
      if issued - done >= max_parked then
        redis.call('HDEL', marks, user)
        redis.call('ZREM', deadlines, user)
        limited = limited + 1
        results[#results + 1] = ''
      else
        redis.call('HSET', marks, user, epoch .. ':' .. (issued + 1) .. ':' .. done)
        results[#results + 1] = epoch .. '.' .. (issued + 1)
      end
    elseif redis.call('ZCARD', deadlines) >= max_users then
      refused = refused + 1
      results[#results + 1] = ''
    else
      local epoch = seed .. string.format('%x', i)
      redis.call('HSET', marks, user, epoch .. ':1:0')
      redis.call('ZADD', deadlines, now + release_ms, user)
      created = created + 1
      results[#results + 1] = epoch .. '.1'
    end
  end
elseif op == 'complete' then
  for i = 2, #ARGV, 3 do
    local user, epoch_in, seq_in = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    local value = redis.call('HGET', marks, user)
    if value then
      local epoch, issued, done = parse(value)
      if epoch == epoch_in and seq_in == done + 1 then
        if seq_in >= issued then
          redis.call('HDEL', marks, user)
          redis.call('ZREM', deadlines, user)
        else
          redis.call('HSET', marks, user, epoch .. ':' .. issued .. ':' .. seq_in)
        end
      end
    end
  end
end
local size = redis.call('ZCARD', deadlines)
if size == 0 then
  redis.call('DEL', marks, deadlines)
else
  local last = redis.call('ZRANGE', deadlines, -1, -1, 'WITHSCORES')
  local ttl = math.max(1, math.ceil(tonumber(last[2]) - now)) + 60000
  redis.call('PEXPIRE', marks, ttl)
  redis.call('PEXPIRE', deadlines, ttl)
end
local reply = { #expired, size, limited, refused, created }
for i = 1, #results do reply[#reply + 1] = results[i] end
return reply
`

type OrderCommand = (marks: string, deadlines: string, ...args: (string | number)[]) => Promise<(number | string)[]>

export function orderMarksKey(destination: string): string {
  return `lookstream:{order:${destination}}:marks`
}

export function orderDeadlinesKey(destination: string): string {
  return `lookstream:{order:${destination}}:deadlines`
}

/**
 * Who a record belongs to in Redis: a hash of its Kafka key, so no row value is stored (undefined without a key:
 * such records are not ordered).
 */
export function orderUserOf(key: Buffer | null): string | undefined {
  if (key === null || key.length === 0) return undefined
  return createHash('sha256').update(key).digest('base64url').slice(0, 22)
}

/**
 * Who a record belongs to within this process (the turns of `UserOrder.tryEnter`): its Kafka key as it is, one
 * character per byte, never written anywhere. Hashing is left to the rare record whose user is looked up, parked
 * or completed in Redis.
 */
export function localUserOf(key: Buffer | null): string | undefined {
  if (key === null || key.length === 0) return undefined
  return key.toString('latin1')
}

export interface OrderTicket {
  epoch: string
  seq: number
}

const TICKET = /^([0-9a-f]{1,40})\.([1-9][0-9]{0,8})$/

/** The ticket of a parked record; undefined when absent or not one the runtime writes (the record is then unticketed). */
export function parseTicket(value: string | undefined): OrderTicket | undefined {
  if (value === undefined) return undefined
  const match = TICKET.exec(value)
  if (match === null) return undefined
  return { epoch: match[1]!, seq: Number(match[2]) }
}

export function formatTicket(ticket: OrderTicket): string {
  return `${ticket.epoch}.${ticket.seq}`
}

/** A user's mark: its epoch, the tickets issued and the ones done (delivered or dead-lettered, in order). */
export interface OrderMark {
  epoch: string
  issued: number
  done: number
}

function parseMark(value: string): OrderMark | undefined {
  const match = /^([^:]+):(\d+):(\d+)$/.exec(value)
  if (match === null) return undefined
  return { epoch: match[1]!, issued: Number(match[2]), done: Number(match[3]) }
}

/**
 * Whether a record of a user may be sent now: `send`, or `hold` (park it behind the user's earlier message). A
 * record holding a ticket of the user's current mark is sent when it is the next one (or an old copy of one
 * done); a message from a canonical topic waits while the user is parked.
 */
export function orderVerdict(
  mark: OrderMark | undefined,
  ticket: OrderTicket | undefined,
  fromRetryTopic: boolean,
): 'send' | 'hold' {
  if (mark === undefined) return 'send'
  if (ticket !== undefined && ticket.epoch === mark.epoch) return ticket.seq <= mark.done + 1 ? 'send' : 'hold'
  // A parked message without a ticket of the current mark was parked unordered (its user released): it never
  // waits again.
  if (fromRetryTopic) return 'send'
  return mark.issued > mark.done ? 'hold' : 'send'
}

export interface UserOrderSettings {
  /** After this long since a user's first parked message, its order is given up (the time box). */
  releaseMs: number
  /** A user with this many messages parked is released instead of parking one more behind them. */
  maxParkedPerUser: number
  /** Users whose order is kept at once, per destination (bounds the Redis state); beyond it order is not kept. */
  maxUsers: number
}

export interface OrderEvents {
  /** How many users are parked (every replica's view of Redis, as of this call). */
  parkedUsers(count: number): void
  /** Users whose order was given up: `time` (release deadline), `limit` (too many parked), `capacity`. */
  released(reason: 'time' | 'limit' | 'capacity', users: number): void
}

/**
 * What a released waiter learns about the message it waited behind: parked (the waiter is held behind it),
 * finished (delivered or dead-lettered: the waiter reads its user's mark), clear (finished, and its user had no
 * mark when it was sent: the waiter goes without reading it again), abandoned (shutdown).
 */
export type PredecessorFate = 'parked' | 'finished' | 'clear' | 'abandoned'

interface Waiter {
  batch: object
  resume: (fate: PredecessorFate) => void
}

const NO_WAITERS: Waiter[] = []

/**
 * The Redis marks of one destination plus, in this process, one message per user in delivery at a time: a later
 * message of a user waits (in memory, not in the deliverer) until the earlier one is delivered, dead-lettered or
 * parked, so in-process retries and concurrent requests never reorder a user's messages.
 */
export class UserOrder {
  readonly #run: OrderCommand
  readonly #marks: string
  readonly #deadlines: string
  readonly settings: UserOrderSettings
  readonly #events: OrderEvents
  /**
   * Users with a message in delivery here, and the messages of theirs waiting behind it, in arrival order (the
   * shared NO_WAITERS until one waits: most users never have a second message in delivery).
   */
  readonly #active = new Map<string, Waiter[]>()
  #pendingCompletions: { user: string; ticket: OrderTicket }[] = []
  #completionFlush: Promise<void> | undefined

  constructor(redis: RedisClient, destination: string, settings: UserOrderSettings, events: OrderEvents) {
    // defineCommand runs EVALSHA and falls back to EVAL once per connection when the script is unknown.
    if (!('lookstreamUserOrder' in redis)) redis.defineCommand('lookstreamUserOrder', { numberOfKeys: 2, lua: SCRIPT })
    const command = (redis as unknown as { lookstreamUserOrder: OrderCommand }).lookstreamUserOrder
    this.#run = command.bind(redis)
    this.#marks = orderMarksKey(destination)
    this.#deadlines = orderDeadlinesKey(destination)
    this.settings = settings
    this.#events = events
  }

  /** Users with a message in delivery in this process (for tests and shutdown checks). */
  get activeUsers(): number {
    return this.#active.size
  }

  /** Takes the user's turn when no earlier message of the user is in delivery here (true); false changes nothing. */
  tryEnter(user: string): boolean {
    if (this.#active.has(user)) return false
    this.#active.set(user, NO_WAITERS)
    return true
  }

  /**
   * Queues a message of `batch` behind the user's message in delivery here (after `tryEnter` said false): `resume`
   * is called once the messages ahead of it are finished, parked or abandoned, and it then has the turn.
   */
  wait(user: string, batch: object, resume: (fate: PredecessorFate) => void): void {
    const queue = this.#active.get(user)
    if (queue === undefined) throw new Error('UserOrder.wait: the user has no message in delivery here')
    if (queue === NO_WAITERS) this.#active.set(user, [{ batch, resume }])
    else queue.push({ batch, resume })
  }

  /** Gives the turn to the user's next waiting message (told what became of this one), or frees the user. */
  leave(user: string, fate: PredecessorFate): void {
    const queue = this.#active.get(user)
    if (queue === undefined) return
    const next = queue.shift()
    if (next === undefined) this.#active.delete(user)
    else next.resume(fate)
  }

  /**
   * Gives the turn on only when the next waiting message is of the same batch (its retry record is written after
   * this one's, in the same produce); false, and the caller keeps the turn, otherwise.
   */
  passWithin(user: string, batch: object, fate: PredecessorFate): boolean {
    const next = this.#active.get(user)?.[0]
    if (next?.batch !== batch) return false
    this.leave(user, fate)
    return true
  }

  /**
   * Whether any user of the destination is parked (has a mark) now: when none is, every lookup would answer
   * undefined, and the caller need not hash its users nor send them.
   */
  async anyParked(): Promise<boolean> {
    let parked = 0
    await this.#call('probe', [], (size) => (parked = size))
    return parked > 0
  }

  /** The users' current marks (undefined: not parked). */
  async lookup(users: readonly string[]): Promise<(OrderMark | undefined)[]> {
    if (users.length === 0) return []
    const reply = await this.#call('lookup', users)
    return reply.map((value) => (value === '' ? undefined : parseMark(value)))
  }

  /**
   * Records these messages as parked: a message with a ticket keeps its place (or, its user released, is parked
   * without order); one without gets the next ticket of its user (a new mark when the user was not parked).
   * Undefined: parked without order (released, at the per-user limit, or at capacity).
   */
  async park(
    entries: readonly { user: string; ticket: OrderTicket | undefined }[],
  ): Promise<(OrderTicket | undefined)[]> {
    if (entries.length === 0) return []
    const args: (string | number)[] = [
      this.settings.releaseMs,
      this.settings.maxParkedPerUser,
      this.settings.maxUsers,
      randomBytes(6).toString('hex'),
    ]
    for (const { user, ticket } of entries) args.push(user, ticket?.epoch ?? '', ticket?.seq ?? 0)
    const reply = await this.#call('park', args)
    return reply.map((value) => (value === '' ? undefined : parseTicket(value)))
  }

  /**
   * Records a ticketed message as done (delivered or dead-lettered): the next one of its user may go, and the user
   * is no longer parked after the last. Completions asked for in one tick share one round trip.
   */
  complete(user: string, ticket: OrderTicket): Promise<void> {
    this.#pendingCompletions.push({ user, ticket })
    this.#completionFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const entries = this.#pendingCompletions
      this.#pendingCompletions = []
      this.#completionFlush = undefined
      const args: (string | number)[] = []
      for (const entry of entries) args.push(entry.user, entry.ticket.epoch, entry.ticket.seq)
      return this.#call('complete', args).then(() => undefined)
    })
    return this.#completionFlush
  }

  async #call(
    op: 'probe' | 'lookup' | 'park' | 'complete',
    args: readonly (string | number)[],
    parkedUsers?: (size: number) => void,
  ): Promise<string[]> {
    const reply = await this.#run(this.#marks, this.#deadlines, op, ...args)
    const [byTime, size, byLimit, refused] = reply.slice(0, 4).map(Number) as [number, number, number, number]
    parkedUsers?.(size)
    this.#events.parkedUsers(size)
    if (byTime > 0) this.#events.released('time', byTime)
    if (byLimit > 0) this.#events.released('limit', byLimit)
    if (refused > 0) this.#events.released('capacity', refused)
    return reply.slice(5).map(String)
  }
}
