import { hashTag, type RedisClient } from '@lookstream/redis'
import type { Redis } from 'ioredis'
import { sendRecordKey } from '../send-counts.ts'

// What a file destination knows about each send, in Redis (durable across restarts and shared by replicas). The
// keys of one send share the hash tag {<name>:<id>}, so on Redis Cluster they live on one slot and every script
// below touches that slot only:
//   lookstream:file:{<name>:<id>}:send      hash: status/accepted/started_at/connection from the ingress's
//                                            `finished` event, staged (rows written to staged chunks; more than
//                                            the distinct rows after a crash, never fewer), first_seen_at, and once
//                                            closed: outcome, location, rows, reason, delivered, dead_lettered;
//                                            target: the file name a publish was last started under;
//                                            origin: `new` when the hash was created before anything of the
//                                            send was staged, `adopted` when it was rebuilt from the staging
//                                            area; a hash without it was created after a Redis data loss (or
//                                            its TTL) by a later event, and does not account for everything
//                                            staged before: it is adopted (below)
//   lookstream:file:{<name>:<id>}:rejected  hash: `<topic>:<partition>:<offset>` -> reason, for rows that can
//                                            never be written (idempotent: a row rejected again after a crash is
//                                            counted once)
//   lookstream:file:{<name>:<id>}:lock      the composer's lease
//   lookstream:file:{<name>}:open           set of the send ids not finished with yet (the sweep's work list)
// The open set and the ingress's send record (lookstream:{sends}:send:<id>) lie on other slots, so they are
// written by separate commands, ordered so that a crash between two of them loses nothing: a send joins the open
// set before its state is written, the send record is written from the closed state (again on every later
// pass until it succeeds), and a send leaves the open set only once its record is written and its staged chunks
// are deleted. Every key expires after the state TTL, renewed on each update.
// What a send needs to finish is also kept in S3 beside its staged chunks (staged-chunk.ts: finished.json,
// rejected/, closed.json), so a send whose state Redis lost is adopted: its state is rebuilt from the staging area
// and merged into whatever later events wrote (ADOPT), once (it sets origin).

export interface SendState {
  /** The ingress's final status; undefined until its `finished` event was seen. */
  status: 'succeeded' | 'failed' | undefined
  accepted: number
  startedAt: string | undefined
  /** The connection the send's rows are staged through (from its rows, else from the finished event). */
  connection: string | undefined
  staged: number
  rejected: number
  firstSeenAt: number | undefined
  outcome: 'published' | 'failed' | 'empty' | undefined
  location: string | undefined
  reason: string | undefined
  /** False when the state was created after a Redis data loss and not yet rebuilt from the staging area. */
  complete: boolean
}

const READ_FIELDS = [
  'status',
  'accepted',
  'started_at',
  'staged_connection',
  'staged',
  'first_seen_at',
  'outcome',
  'location',
  'reason',
  'origin',
] as const

// KEYS: send hash, rejected hash. ARGV: ttl, now, then field/value pairs to set (only while open).
// Returns the fields of READ_FIELDS followed by the rejected count.
const UPDATE = `
local ttl = tonumber(ARGV[1])
local open = redis.call('HGET', KEYS[1], 'outcome') == false
if open then
  redis.call('HSETNX', KEYS[1], 'first_seen_at', ARGV[2])
  local i = 3
  while i < #ARGV do
    if ARGV[i] == '+staged' then
      redis.call('HINCRBY', KEYS[1], 'staged', ARGV[i + 1])
    else
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
    i = i + 2
  end
  redis.call('EXPIRE', KEYS[1], ttl)
end
local values = redis.call('HMGET', KEYS[1], ${READ_FIELDS.map((f) => `'${f}'`).join(', ')})
values[#values + 1] = redis.call('HLEN', KEYS[2])
return values
`

// KEYS: send hash, rejected hash. ARGV: ttl, outcome, location, rows, reason, delivered, dead-lettered. Closes
// the send once (a second close changes nothing and returns 0); the rejected rows' reasons were read before.
const CLOSE = `
if redis.call('HGET', KEYS[1], 'outcome') ~= false then return 0 end
redis.call('HSET', KEYS[1], 'outcome', ARGV[2], 'location', ARGV[3], 'rows', ARGV[4], 'reason', ARGV[5],
  'delivered', ARGV[6], 'dead_lettered', ARGV[7])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
redis.call('DEL', KEYS[2])
return 1
`

// KEYS: the ingress's send record. ARGV: location, reason, delivered, dead-lettered. Gives the record the
// file's location or the reason there is none (the same values again on a later pass: idempotent). A record
// past its TTL, or a send id the ingress never recorded, is not created.
const RECORD = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'file', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'file_error', ARGV[2]) end
redis.call('HSET', KEYS[1], 'delivered', ARGV[3], 'dead_lettered', ARGV[4])
return 1
`

// KEYS: rejected hash, send hash. ARGV: ttl, now, then field/reason pairs.
const REJECT = `
if redis.call('HGET', KEYS[2], 'outcome') ~= false then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSETNX', KEYS[2], 'first_seen_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[1]))
return 1
`

// KEYS: open set. ARGV: ttl, send id.
const OPEN = `
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
`

// KEYS: send hash. 1: the state accounts for the send since its start (origin), 0: it exists without, -1: none.
const ORIGIN = `
if redis.call('HEXISTS', KEYS[1], 'origin') == 1 then return 1 end
return redis.call('EXISTS', KEYS[1]) - 1
`

// KEYS: send hash. ARGV: ttl, now. Creates the state of a send nothing of which is staged yet (the caller saw its
// staging folder empty); a state another replica created meanwhile is kept. Returns like ORIGIN.
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'origin', 'new', 'first_seen_at', ARGV[2])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
  return 1
end
if redis.call('HEXISTS', KEYS[1], 'origin') == 1 then return 1 end
return 0
`

// KEYS: send hash, rejected hash. ARGV: ttl, now, connection, staged rows, then either 'closed', outcome,
// location, rows, delivered, dead-lettered or 'finished', status, accepted, started at, connection, or 'open'.
// Merges what the staging area holds into the state, once: a state with an origin is left alone (0). Staged rows
// are added (rows counted by events after the loss may be counted twice: over-counting only starts a compose
// whose distinct-row check sends it back to waiting, never a short file); finished fields already written by a
// later event stay; a closed state stays closed.
const ADOPT = `
if redis.call('HEXISTS', KEYS[1], 'origin') == 1 then return 0 end
redis.call('HSETNX', KEYS[1], 'first_seen_at', ARGV[2])
if redis.call('HEXISTS', KEYS[1], 'outcome') == 0 then
  if ARGV[5] == 'closed' then
    redis.call('HSET', KEYS[1], 'outcome', ARGV[6], 'location', ARGV[7], 'rows', ARGV[8], 'reason', '',
      'delivered', ARGV[9], 'dead_lettered', ARGV[10], 'staged_connection', ARGV[3])
    redis.call('DEL', KEYS[2])
  else
    if ARGV[5] == 'finished' and redis.call('HEXISTS', KEYS[1], 'status') == 0 then
      redis.call('HSET', KEYS[1], 'status', ARGV[6], 'accepted', ARGV[7], 'started_at', ARGV[8], 'connection',
        ARGV[9], 'staged_connection', ARGV[9], 'ingress_error', '')
    end
    redis.call('HSETNX', KEYS[1], 'staged_connection', ARGV[3])
    redis.call('HINCRBY', KEYS[1], 'staged', ARGV[4])
  end
end
redis.call('HSET', KEYS[1], 'origin', 'adopted')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
`

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`

function parse(values: (string | number | null)[]): SendState {
  const text = (i: number) => {
    const value = values[i]
    return value === null || value === undefined || value === '' ? undefined : String(value)
  }
  const num = (i: number) => Number(text(i) ?? 0)
  const status = text(0)
  const outcome = text(6)
  return {
    status: status === 'succeeded' || status === 'failed' ? status : undefined,
    accepted: num(1),
    startedAt: text(2),
    connection: text(3),
    staged: num(4),
    firstSeenAt: text(5) === undefined ? undefined : num(5),
    outcome: outcome === 'published' || outcome === 'failed' || outcome === 'empty' ? outcome : undefined,
    location: text(7),
    reason: text(8),
    complete: text(9) !== undefined,
    rejected: Number(values[10] ?? 0),
  }
}

export interface Finished {
  status: 'succeeded' | 'failed'
  accepted: number
  startedAt: string
  connection: string
  /** Why the ingress failed the send, when it did. */
  error: string | undefined
}

/** The Redis keys of one send's state (one Redis Cluster slot), and the destination's open-send set. */
export function fileSendKeys(destination: string, sendId: string) {
  const tag = `lookstream:file:${hashTag(`${destination}:${sendId}`)}`
  return {
    send: `${tag}:send`,
    rejected: `${tag}:rejected`,
    lock: `${tag}:lock`,
  }
}

export function fileOpenSetKey(destination: string): string {
  return `lookstream:file:${hashTag(destination)}:open`
}

/** A send's `finished` fields as kept in the staging area. */
export interface FinishedFacts {
  status: 'succeeded' | 'failed'
  accepted: number
  startedAt: string
  connection: string
}

/** A closed send's outcome as kept in the staging area while its cleanup runs. */
export interface ClosedFacts {
  outcome: 'published' | 'failed' | 'empty'
  location: string
  rows: number
  delivered: number
  deadLettered: number
  connection: string
}

/** What the staging area says about a send whose state is rebuilt (adopted). */
export interface AdoptedFacts {
  /** The connection whose staging area it was found in. */
  connection: string
  /** Rows of the staged chunks (rows staged twice around a crash count twice, as the `staged` counter does). */
  staged: number
  finished: FinishedFacts | undefined
  closed: ClosedFacts | undefined
}

/** `complete`: the state accounts for the send since its start; `partial`: it does not; `missing`: none. */
export type OriginState = 'complete' | 'partial' | 'missing'

function originState(answer: unknown): OriginState {
  return answer === 1 ? 'complete' : answer === 0 ? 'partial' : 'missing'
}

export interface CloseDetails {
  location?: string
  rows: number
  reason?: string
  deadLettered: number
}

export class SendStates {
  private readonly destination: string
  private readonly openKey: string
  private readonly redis: Redis
  private readonly ttlSeconds: number

  constructor(redis: RedisClient, destination: string, ttlSeconds: number) {
    // A Cluster client runs every command used here (each script stays on one slot); the types name Redis's.
    this.redis = redis as Redis
    this.ttlSeconds = ttlSeconds
    this.destination = destination
    this.openKey = fileOpenSetKey(destination)
  }

  private keys(sendId: string) {
    return fileSendKeys(this.destination, sendId)
  }

  /** Puts the send on the sweep's work list (before anything about it is written, so a crash cannot lose it). */
  private async open(sendId: string): Promise<void> {
    await this.redis.eval(OPEN, 1, this.openKey, this.ttlSeconds, sendId)
  }

  private async update(sendId: string, pairs: string[]): Promise<SendState> {
    const k = this.keys(sendId)
    const values = (await this.redis.eval(UPDATE, 2, k.send, k.rejected, this.ttlSeconds, Date.now(), ...pairs)) as (
      string | number | null
    )[]
    return parse(values)
  }

  /** The send's state (an unknown send starts its abandonment clock here). */
  get(sendId: string): Promise<SendState> {
    return this.update(sendId, [])
  }

  /** Counts rows written to a staged chunk; resolves with the send's state after it. */
  async staged(sendId: string, connection: string, rows: number): Promise<SendState> {
    await this.open(sendId)
    return this.update(sendId, ['+staged', String(rows), 'staged_connection', connection])
  }

  /** Records the ingress's `finished` event. */
  async finished(sendId: string, event: Finished): Promise<SendState> {
    await this.open(sendId)
    return this.update(sendId, [
      'status',
      event.status,
      'accepted',
      String(event.accepted),
      'started_at',
      event.startedAt,
      'connection',
      event.connection,
      'staged_connection',
      event.connection,
      'ingress_error',
      event.error ?? '',
    ])
  }

  async ingressError(sendId: string): Promise<string | undefined> {
    const value = await this.redis.hget(this.keys(sendId).send, 'ingress_error')
    return value === null || value === '' ? undefined : value
  }

  /**
   * Records rows that can never be written (`where` identifies each: topic, partition, offset): false when the send
   * is closed already (nothing recorded).
   */
  async reject(sendId: string, rows: readonly { where: string; reason: string }[]): Promise<boolean> {
    const k = this.keys(sendId)
    await this.open(sendId)
    const pairs = rows.flatMap(({ where, reason }) => [where, reason])
    return (await this.redis.eval(REJECT, 2, k.rejected, k.send, this.ttlSeconds, Date.now(), ...pairs)) === 1
  }

  /** Whether the send's state accounts for everything staged for it (see ORIGIN). */
  async origin(sendId: string): Promise<OriginState> {
    return originState(await this.redis.eval(ORIGIN, 1, this.keys(sendId).send))
  }

  /** Creates the state of a send whose staging folder is empty (see CREATE). */
  async create(sendId: string): Promise<OriginState> {
    await this.open(sendId)
    return originState(await this.redis.eval(CREATE, 1, this.keys(sendId).send, this.ttlSeconds, Date.now()))
  }

  /** Puts a send found in the staging area back on the open set (before its state is rebuilt). */
  reopen(sendId: string): Promise<void> {
    return this.open(sendId)
  }

  /** Rebuilds a send's state from the staging area (see ADOPT): false when its state has an origin already. */
  async adopt(sendId: string, facts: AdoptedFacts): Promise<boolean> {
    const k = this.keys(sendId)
    const tail = facts.closed
      ? [
          'closed',
          facts.closed.outcome,
          facts.closed.location,
          facts.closed.rows,
          facts.closed.delivered,
          facts.closed.deadLettered,
        ]
      : facts.finished
        ? [
            'finished',
            facts.finished.status,
            facts.finished.accepted,
            facts.finished.startedAt,
            facts.finished.connection,
          ]
        : ['open']
    // A send closed by a pass that began before the loss may have been closed without naming its connection.
    const connection = facts.closed?.connection || facts.finished?.connection || facts.connection
    const answer = await this.redis.eval(
      ADOPT,
      2,
      k.send,
      k.rejected,
      this.ttlSeconds,
      Date.now(),
      connection,
      facts.staged,
      ...tail,
    )
    return answer === 1
  }

  /** A closed send's outcome, to keep in the staging area while its cleanup runs; undefined while it is open. */
  async closedFacts(sendId: string): Promise<ClosedFacts | undefined> {
    const [outcome, location, rows, delivered, deadLettered, connection] = await this.redis.hmget(
      this.keys(sendId).send,
      'outcome',
      'location',
      'rows',
      'delivered',
      'dead_lettered',
      'staged_connection',
    )
    if (outcome !== 'published' && outcome !== 'failed' && outcome !== 'empty') return undefined
    return {
      outcome,
      location: location ?? '',
      rows: Number(rows ?? 0),
      delivered: Number(delivered ?? 0),
      deadLettered: Number(deadLettered ?? 0),
      connection: connection ?? '',
    }
  }

  /** The connection the send's rows are staged through, when its state names one. */
  async stagedConnection(sendId: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys(sendId).send, 'staged_connection')) ?? undefined
  }

  /** Up to `limit` reasons rows were rejected for (reasons name columns and rules, never row values). */
  async rejectReasons(sendId: string, limit: number): Promise<string[]> {
    const reasons = new Set<string>()
    let cursor = '0'
    do {
      const [next, entries] = await this.redis.hscan(this.keys(sendId).rejected, cursor, 'COUNT', 100)
      cursor = next
      for (let i = 1; i < entries.length && reasons.size < limit; i += 2) reasons.add(entries[i]!)
    } while (cursor !== '0' && reasons.size < limit)
    return [...reasons]
  }

  /**
   * Closes the send once: true when this call closed it. The send record is written by recordOutcome, which the
   * caller runs after every close (and again on later passes over a closed send).
   */
  async close(sendId: string, outcome: 'published' | 'failed' | 'empty', details: CloseDetails): Promise<boolean> {
    const k = this.keys(sendId)
    const closed = await this.redis.eval(
      CLOSE,
      2,
      k.send,
      k.rejected,
      this.ttlSeconds,
      outcome,
      details.location ?? '',
      details.rows,
      details.reason ?? '',
      outcome === 'published' ? details.rows : 0,
      details.deadLettered,
    )
    return closed === 1
  }

  /** Copies a closed send's outcome into the ingress's send record (idempotent; nothing for an open send). */
  async recordOutcome(sendId: string): Promise<void> {
    const [outcome, location, reason, delivered, deadLettered] = await this.redis.hmget(
      this.keys(sendId).send,
      'outcome',
      'location',
      'reason',
      'delivered',
      'dead_lettered',
    )
    if (outcome === null) return
    await this.redis.eval(
      RECORD,
      1,
      sendRecordKey(sendId),
      location ?? '',
      reason ?? '',
      delivered ?? '0',
      deadLettered ?? '0',
    )
  }

  /** Notes the name a publish starts under, so a send closed without that file can abort what it left. */
  async publishing(sendId: string, name: string): Promise<void> {
    await this.redis.hset(this.keys(sendId).send, 'target', name)
  }

  /** The name a publish was started under, for a send closed without publishing it (else undefined). */
  async abandonedTarget(sendId: string): Promise<string | undefined> {
    const [outcome, target] = await this.redis.hmget(this.keys(sendId).send, 'outcome', 'target')
    return outcome === null || outcome === 'published' || target === null ? undefined : target
  }

  openSends(): Promise<string[]> {
    return this.redis.smembers(this.openKey)
  }

  async forget(sendId: string): Promise<void> {
    await this.redis.srem(this.openKey, sendId)
  }

  async lock(sendId: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys(sendId).lock, token, 'PX', ttlMs, 'NX')) === 'OK'
  }

  async renew(sendId: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.keys(sendId).lock, token, ttlMs)) === 1
  }

  async unlock(sendId: string, token: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.keys(sendId).lock, token)
  }
}
