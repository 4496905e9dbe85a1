import type { Cluster, Redis as SingleRedis } from 'ioredis'

/** A single Redis or a Redis Cluster client (every key a call touches shares the send's hash tag). */
export type Redis = SingleRedis | Cluster
import { failureCountsKey, failuresKey, sendRecordKey } from './keys.ts'
import { open, seal, type HistoryKey } from './seal.ts'

// The rows of a send that did not make it, for the send history page: at most `maxEntries` entries and
// `maxBytes` bytes per send (the first ones; later ones are only counted), with counts by stage,
// destination and code kept for all of them. Both keys expire with the send record.
//
// An entry in Redis is JSON with the routing facts in the clear (destination, row number, messageId,
// stage, code, time) and the row's details (reason, identity values) sealed (seal.ts).

export type FailureStage = 'rejected' | 'dead-lettered' | 'failed'
export const FAILURE_STAGES: readonly FailureStage[] = ['rejected', 'dead-lettered', 'failed']

export interface RowFailure {
  destination: string
  /** Row number in the Look (message.context.lookstream.row). */
  row: number
  messageId?: string | undefined
  stage: FailureStage
  /** A short machine code: an ingress reason class, an HTTP status, a vendor error code. */
  code: string
  /** The ingress's reason, or the vendor's message for a destination rejection. */
  reason: string
  /** The values that identify the row (e.g. userId, groupId, email), never credentials. */
  identity?: Readonly<Record<string, string>> | undefined
  at: Date
}

export interface StoredFailure {
  destination: string
  row: number
  messageId: string | undefined
  stage: FailureStage
  code: string
  /** Undefined when the details were sealed under another key (the secret changed). */
  reason: string | undefined
  identity: Record<string, string> | undefined
  at: string
}

export interface FailureLimits {
  maxEntries: number
  maxBytes: number
}

export const DEFAULT_FAILURE_LIMITS: FailureLimits = { maxEntries: 10_000, maxBytes: 4 * 1024 * 1024 }
/** Used when the send record has no expiry of its own. */
export const DEFAULT_TTL_SECONDS = 30 * 24 * 3600

export const MAX_REASON_CHARS = 1024
export const MAX_IDENTITY_KEYS = 8
export const MAX_IDENTITY_KEY_CHARS = 64
export const MAX_IDENTITY_VALUE_CHARS = 256
export const MAX_CODE_CHARS = 64
const MAX_COUNT_FIELDS = 256
const ENTRIES_PER_CALL = 500

export interface RecordOptions extends Partial<FailureLimits> {
  key: HistoryKey
  /** The send record's TTL; read from the record (PTTL) when omitted. */
  ttlSeconds?: number
}

export interface RecordResult {
  /** Entries written to the list by this call. */
  stored: number
  /** Entries counted (all of them, unless the send record does not exist). */
  counted: number
  /** True when the send record does not exist (unknown id or expired): nothing was written. */
  noRecord: boolean
}

// KEYS: list, counts. ARGV: maxEntries, maxBytes, ttlMs, counter count, (field, increment)…, entry…
// An empty entry is counted in `total` but never stored (a writer that knows the list is full sends none).
const RECORD = `
local maxEntries = tonumber(ARGV[1])
local maxBytes = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local counters = tonumber(ARGV[4])
local i = 5
for c = 1, counters do
  local field = ARGV[i]
  if string.sub(field, 1, 5) == 'code:' and redis.call('HEXISTS', KEYS[2], field) == 0
     and redis.call('HLEN', KEYS[2]) >= ${MAX_COUNT_FIELDS} then
    field = 'code:(other)'
  end
  redis.call('HINCRBY', KEYS[2], field, ARGV[i + 1])
  i = i + 2
end
local stored = tonumber(redis.call('HGET', KEYS[2], 'stored') or '0')
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
local added = 0
for j = i, #ARGV do
  local size = string.len(ARGV[j])
  if size > 0 and stored < maxEntries and bytes + size <= maxBytes then
    redis.call('RPUSH', KEYS[1], ARGV[j])
    stored = stored + 1
    bytes = bytes + size
    added = added + 1
  end
end
redis.call('HSET', KEYS[2], 'stored', stored, 'bytes', bytes)
redis.call('HINCRBY', KEYS[2], 'total', #ARGV - i + 1)
redis.call('PEXPIRE', KEYS[2], ttl)
if stored > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return added
`

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [${text.length - max} more characters not kept]`
}

function cleanCode(code: string): string {
  const cleaned = code.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, MAX_CODE_CHARS)
  return cleaned === '' ? 'unknown' : cleaned
}

function cleanIdentity(identity: Readonly<Record<string, string>> | undefined): Record<string, string> | undefined {
  if (identity === undefined) return undefined
  const kept: Record<string, string> = {}
  let count = 0
  for (const [name, value] of Object.entries(identity)) {
    if (typeof value !== 'string') continue
    if (count++ === MAX_IDENTITY_KEYS) break
    kept[name.slice(0, MAX_IDENTITY_KEY_CHARS)] = clip(value, MAX_IDENTITY_VALUE_CHARS)
  }
  return count === 0 ? undefined : kept
}

interface EncodedEntry {
  d: string
  r: number
  m?: string
  s: FailureStage
  c: string
  a: string
  /** sealed JSON of {reason, identity} */
  x: string
}

/** The Redis form of one failure (exported for the size figure in bench/). */
export function encodeFailure(key: HistoryKey, failure: RowFailure): string {
  if (!FAILURE_STAGES.includes(failure.stage)) throw new Error(`unknown failure stage ${JSON.stringify(failure.stage)}`)
  if (!Number.isSafeInteger(failure.row) || failure.row < 0) throw new Error('a failure row number is an integer ≥ 0')
  const details = { reason: clip(failure.reason, MAX_REASON_CHARS), identity: cleanIdentity(failure.identity) }
  const entry: EncodedEntry = {
    d: failure.destination.slice(0, 64),
    r: failure.row,
    ...(failure.messageId === undefined ? {} : { m: failure.messageId.slice(0, 128) }),
    s: failure.stage,
    c: cleanCode(failure.code),
    a: failure.at.toISOString(),
    x: seal(key, JSON.stringify(details)),
  }
  return JSON.stringify(entry)
}

/** What a failure that is only counted (past the limits) still contributes: its counts by stage, destination, code. */
export type CountedFailure = Pick<RowFailure, 'stage' | 'destination' | 'code'>

function counterFields(failure: CountedFailure): string[] {
  return [
    `stage:${failure.stage}`,
    `destination:${failure.destination.slice(0, 64)}`,
    `code:${cleanCode(failure.code)}`,
  ]
}

async function ttlMsFor(redis: Redis, sendId: string, ttlSeconds: number | undefined): Promise<number | undefined> {
  if (ttlSeconds !== undefined) return Math.max(1, Math.round(ttlSeconds * 1000))
  const pttl = await redis.pttl(sendRecordKey(sendId))
  if (pttl === -2) return undefined
  return pttl === -1 ? DEFAULT_TTL_SECONDS * 1000 : pttl
}

/**
 * Records rows of one send that did not make it. Safe to call per batch from many processes: the limits
 * hold across all writers of a send. Entries past the limits are counted, not kept. `countOnly` entries
 * (a writer that knows the list is full) are counted without being encoded.
 */
export async function recordRowFailures(
  redis: Redis,
  sendId: string,
  entries: readonly RowFailure[],
  options: RecordOptions & { countOnly?: readonly CountedFailure[] },
): Promise<RecordResult> {
  const listKey = failuresKey(sendId)
  const countsKey = failureCountsKey(sendId)
  const limits = { ...DEFAULT_FAILURE_LIMITS, ...definedLimits(options) }
  const countOnly = options.countOnly ?? []
  if (entries.length === 0 && countOnly.length === 0) return { stored: 0, counted: 0, noRecord: false }
  const ttlMs = await ttlMsFor(redis, sendId, options.ttlSeconds)
  if (ttlMs === undefined) return { stored: 0, counted: 0, noRecord: true }
  let stored = 0
  for (let start = 0; start < entries.length || (start === 0 && countOnly.length > 0); start += ENTRIES_PER_CALL) {
    const chunk = entries.slice(start, start + ENTRIES_PER_CALL)
    const counted = start === 0 ? countOnly : []
    const counts = new Map<string, number>()
    for (const entry of [...chunk, ...counted]) {
      for (const field of counterFields(entry)) counts.set(field, (counts.get(field) ?? 0) + 1)
    }
    const args: (string | number)[] = [limits.maxEntries, limits.maxBytes, ttlMs, counts.size]
    for (const [field, increment] of counts) args.push(field, increment)
    for (const entry of chunk) args.push(encodeFailure(options.key, entry))
    for (let n = 0; n < counted.length; n++) args.push('')
    stored += Number(await redis.eval(RECORD, 2, listKey, countsKey, ...args))
  }
  return { stored, counted: entries.length + countOnly.length, noRecord: false }
}

function definedLimits(options: Partial<FailureLimits>): Partial<FailureLimits> {
  const limits: Partial<FailureLimits> = {}
  if (options.maxEntries !== undefined) limits.maxEntries = options.maxEntries
  if (options.maxBytes !== undefined) limits.maxBytes = options.maxBytes
  return limits
}

export interface FailureSummary {
  /** Every failure recorded for the send, kept or not. */
  total: number
  /** Failures kept with their details (the first ones). */
  stored: number
  bytes: number
  byStage: Record<string, number>
  byDestination: Record<string, number>
  byCode: Record<string, number>
}

export async function readFailureSummary(redis: Redis, sendId: string): Promise<FailureSummary> {
  const hash = await redis.hgetall(failureCountsKey(sendId))
  const summary: FailureSummary = {
    total: Number(hash.total ?? 0),
    stored: Number(hash.stored ?? 0),
    bytes: Number(hash.bytes ?? 0),
    byStage: {},
    byDestination: {},
    byCode: {},
  }
  for (const [field, value] of Object.entries(hash)) {
    const colon = field.indexOf(':')
    if (colon < 0) continue
    const group = field.slice(0, colon)
    const name = field.slice(colon + 1)
    if (group === 'stage') summary.byStage[name] = Number(value)
    else if (group === 'destination') summary.byDestination[name] = Number(value)
    else if (group === 'code') summary.byCode[name] = Number(value)
  }
  return summary
}

function decodeFailure(key: HistoryKey, text: string): StoredFailure | undefined {
  let entry: Partial<EncodedEntry>
  try {
    entry = JSON.parse(text) as Partial<EncodedEntry>
  } catch {
    return undefined
  }
  if (typeof entry.r !== 'number' || typeof entry.s !== 'string' || !FAILURE_STAGES.includes(entry.s)) return undefined
  const opened = typeof entry.x === 'string' ? open(key, entry.x) : undefined
  let details: { reason?: unknown; identity?: unknown } = {}
  if (opened !== undefined) details = JSON.parse(opened) as typeof details
  const identity =
    details.identity !== null && typeof details.identity === 'object'
      ? Object.fromEntries(
          Object.entries(details.identity as Record<string, unknown>).filter(([, v]) => typeof v === 'string'),
        )
      : undefined
  return {
    destination: String(entry.d ?? ''),
    row: entry.r,
    messageId: typeof entry.m === 'string' ? entry.m : undefined,
    stage: entry.s,
    code: String(entry.c ?? ''),
    reason: typeof details.reason === 'string' ? details.reason : undefined,
    identity: identity as Record<string, string> | undefined,
    at: String(entry.a ?? ''),
  }
}

/** Kept failures of a send in the order they were recorded, `offset` and `limit` over the kept list. */
export async function readRowFailures(
  redis: Redis,
  sendId: string,
  key: HistoryKey,
  { offset = 0, limit = 1000 }: { offset?: number; limit?: number } = {},
): Promise<StoredFailure[]> {
  if (limit <= 0) return []
  const texts = await redis.lrange(failuresKey(sendId), offset, offset + limit - 1)
  const failures: StoredFailure[] = []
  for (const text of texts) {
    const failure = decodeFailure(key, text)
    if (failure !== undefined) failures.push(failure)
  }
  return failures
}

/** Every kept failure of a send, read page by page. */
export async function* allRowFailures(
  redis: Redis,
  sendId: string,
  key: HistoryKey,
  pageSize = 1000,
): AsyncGenerator<StoredFailure[]> {
  for (let offset = 0; ; offset += pageSize) {
    const texts = await redis.lrange(failuresKey(sendId), offset, offset + pageSize - 1)
    const page: StoredFailure[] = []
    for (const text of texts) {
      const failure = decodeFailure(key, text)
      if (failure !== undefined) page.push(failure)
    }
    if (page.length > 0) yield page
    if (texts.length < pageSize) return
  }
}
