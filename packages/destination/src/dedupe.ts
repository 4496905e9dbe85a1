import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'

export const DEFAULT_DEDUPE_TTL_SECONDS = 7 * 24 * 3600

/** Buckets per window: an id is remembered for between one window and one window plus one bucket. */
export const DEDUPE_BUCKETS_PER_WINDOW = 7

/** A bucket length stored for a shorter window is kept until the window spans more buckets than this. */
const MAX_BUCKETS_PER_WINDOW = 4 * DEDUPE_BUCKETS_PER_WINDOW

/**
 * Average ids per hash before the bucket grows by one hash (linear hashing). The fullest hashes then hold about
 * twice this, which stays under Redis's default hash-max-listpack-entries (128) by more than 4 standard deviations.
 */
export const DEFAULT_DEDUPE_LOAD = 48

/** How long after the first start of this layout keys of the previous layout are still read (see ADR). */
export const DEFAULT_LEGACY_GRACE_SECONDS = 24 * 3600

/** The previous layout: one key per (destination, messageId). Still read during the rollout window. */
export function dedupeKey(destination: string, messageId: string): string {
  return `lookstream:dedupe:${destination}:${messageId}`
}

/** Per-destination settings of the layout: bucket length and when it was first used. No TTL. */
export function dedupeMetaKey(destination: string): string {
  return `lookstream:dedupe:{${destination}}`
}

/**
 * State of one time bucket (level, split pointer, count); its hashes are `<this key>:<address>`. The hash tag
 * puts the state and every hash of the bucket on one cluster slot, so each script touches one slot only.
 */
export function dedupeBucketKey(destination: string, bucket: number): string {
  return `lookstream:dedupe:{${destination}:${bucket}}`
}

// A canonical (lower-case) RFC 9562 UUID of version 4, 5 or 7: bytes 9 to 15 are random or hash output.
const RANDOM_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[457][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Longest messageId (UTF-8 bytes) kept verbatim: the field stays within hash-max-listpack-value (64). */
const MAX_VERBATIM_BYTES = 59

/**
 * The hash field that stands for a messageId. Three disjoint forms, told apart by the first byte:
 * - a canonical UUID v4/v5/v7 → its 16 bytes, the variant byte first (0x80–0xBF). Exact: the lower-case text form
 *   and the 16 bytes map one to one.
 * - any other id of at most 59 UTF-8 bytes → 0x00, 4 bytes of its SHA-256, the id itself. Exact (the id is kept).
 * - a longer id → 0x01 and its whole SHA-256: two ids share a field only through a SHA-256 collision.
 * Bytes 2–5 of every form are uniformly distributed; the linear-hashing address is taken from them.
 */
export function dedupeField(messageId: string): Buffer {
  return Buffer.from(fieldHex(messageId), 'hex')
}

/** dedupeField as hex text: a UUID's is a rearrangement of its own digits, with no native call. */
function fieldHex(messageId: string): string {
  if (messageId.length === 36 && RANDOM_UUID.test(messageId)) {
    return (
      messageId.slice(19, 23) +
      messageId.slice(24) +
      messageId.slice(0, 8) +
      messageId.slice(9, 13) +
      messageId.slice(14, 18)
    )
  }
  const utf8 = Buffer.from(messageId, 'utf8')
  const digest = createHash('sha256').update(utf8).digest()
  if (utf8.length <= MAX_VERBATIM_BYTES) return `00${digest.toString('hex', 0, 4)}${utf8.toString('hex')}`
  return `01${digest.toString('hex')}`
}

const LENGTH_HEX = Array.from({ length: 256 }, (_, n) => n.toString(16).padStart(2, '0'))

/**
 * The fields of many ids as one script argument: each field preceded by its length in one byte (every form is at
 * most 64 bytes). One bulk string instead of one per id: the client encodes and Redis parses one argument per
 * call, and the same buffer goes to every bucket a lookup probes.
 */
export function packFields(messageIds: readonly string[]): Buffer {
  // One hex string and one conversion for the whole list: cheaper than a native call per id.
  let hex = ''
  for (const id of messageIds) {
    const field = fieldHex(id)
    hex += LENGTH_HEX[field.length / 2]! + field
  }
  return Buffer.from(hex, 'hex')
}

export interface DedupeOptions {
  /** Average ids per hash before a bucket adds a hash. */
  load?: number
  /** Keys of the previous layout are read until this long after this layout was first used (per destination). */
  legacyGraceSeconds?: number
  /** The clock (epoch ms); tests and benchmarks only. */
  now?: () => number
}

interface Layout {
  bucketMs: number
  /** Previous-layout keys are read while now is before this (epoch ms). */
  legacyUntil: number
  /**
   * Whether Redis held keys of the previous layout for this destination when this layout was first used: `none`
   * (none are read), `present`, or undefined while no replica has looked yet (they are read meanwhile).
   */
  legacy: 'none' | 'present' | undefined
}

/** Keys per SCAN call while looking for keys of the previous layout. */
const LEGACY_SCAN_COUNT = 1000

/** A glob pattern that matches `text` literally. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

type RedisClient = Redis | Cluster

/**
 * Remembers which messageIds a destination accepted, for at least `ttlSeconds`: markDelivered only after the
 * destination accepted them, wasDelivered before sending. Ids go into time buckets (a window is
 * DEDUPE_BUCKETS_PER_WINDOW buckets); each bucket is a linear-hashing table of small Redis hashes whose fields are
 * compact binary forms of the ids (dedupeField), stored as listpacks: ~22 bytes per id instead of ~100 for a key
 * per id. A bucket's keys all expire one window after the bucket ends. docs/adr/0012-compact-dedupe.md.
 */
export class Dedupe {
  readonly #redis: RedisClient
  readonly #destination: string
  readonly #windowMs: number
  readonly #load: number
  readonly #legacyGraceMs: number
  readonly #now: () => number
  #layout: Promise<Layout> | undefined
  /** The search for keys of the previous layout, once per instance (see `#checkLegacy`). */
  #legacyCheck: Promise<void> | undefined

  constructor(
    redis: RedisClient,
    destination: string,
    ttlSeconds: number = DEFAULT_DEDUPE_TTL_SECONDS,
    options: DedupeOptions = {},
  ) {
    if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds)) {
      throw new RangeError(`dedupe ttlSeconds must be a positive number, got ${ttlSeconds}`)
    }
    const load = options.load ?? DEFAULT_DEDUPE_LOAD
    if (!Number.isInteger(load) || load < 1 || load > 64) {
      throw new RangeError(`dedupe load must be an integer from 1 to 64, got ${load}`)
    }
    this.#redis = redis
    this.#destination = destination
    this.#windowMs = Math.ceil(ttlSeconds * 1000)
    this.#load = load
    this.#legacyGraceMs = (options.legacyGraceSeconds ?? DEFAULT_LEGACY_GRACE_SECONDS) * 1000
    this.#now = options.now ?? Date.now
  }

  /**
   * For each id, whether it was already delivered: one script call probes every bucket of the window (one call per
   * bucket on a Redis Cluster, where the buckets live on different slots), all sent together.
   */
  async wasDelivered(messageIds: readonly string[]): Promise<boolean[]> {
    if (messageIds.length === 0) return []
    const now = this.#now()
    const layout = await this.#getLayout(now)
    const packed = packFields(messageIds)
    const first = Math.floor((now - this.#windowMs) / layout.bucketMs)
    // One bucket ahead of this clock: another replica whose clock runs ahead may already write there.
    const last = Math.floor(now / layout.bucketMs) + 1
    // Newest first: a replayed id is most likely in a recent bucket, and the script skips ids already found.
    const keys: string[] = []
    for (let bucket = last; bucket >= first; bucket--) keys.push(dedupeBucketKey(this.#destination, bucket))
    const lookups = this.#redis.isCluster
      ? keys.map((key) => this.#script(LOOKUP, [key], [packed]))
      : [this.#script(LOOKUP, keys, [packed])]
    const legacy = now < layout.legacyUntil && layout.legacy !== 'none' ? this.#legacyLookup(messageIds) : undefined
    const [found, legacyFound] = await Promise.all([Promise.all(lookups) as Promise<number[][]>, legacy])
    const result = new Array<boolean>(messageIds.length).fill(false)
    for (const positions of found) for (const index of positions) result[index - 1] = true
    legacyFound?.forEach((hit, index) => hit && (result[index] = true))
    return result
  }

  /** Remembers the ids (call only after the destination accepted them): one script call. */
  async markDelivered(messageIds: readonly string[], deliveredAt: number = this.#now()): Promise<void> {
    if (messageIds.length === 0) return
    const layout = await this.#getLayout(deliveredAt)
    const bucket = Math.floor(deliveredAt / layout.bucketMs)
    const expireAt = (bucket + 1) * layout.bucketMs + this.#windowMs
    await this.#script(
      MARK,
      [dedupeBucketKey(this.#destination, bucket)],
      [String(expireAt), String(this.#load), packFields(messageIds)],
    )
  }

  async #legacyLookup(messageIds: readonly string[]): Promise<boolean[]> {
    const keys = messageIds.map((id) => dedupeKey(this.#destination, id))
    // MGET needs its keys on one slot: a cluster gets one EXISTS per key (ioredis routes and pipelines them).
    if (this.#redis.isCluster) return Promise.all(keys.map(async (key) => (await this.#redis.exists(key)) === 1))
    return (await this.#redis.mget(keys)).map((value) => value !== null)
  }

  /**
   * Settles when the search for keys of the previous layout started by the first lookup is over (tests): after it,
   * lookups read previous-layout keys only if some existed.
   */
  async legacyChecked(): Promise<void> {
    await this.#getLayout(this.#now())
    await this.#legacyCheck
  }

  #getLayout(now: number): Promise<Layout> {
    this.#layout ??= this.#script(
      LAYOUT,
      [dedupeMetaKey(this.#destination)],
      [String(Math.ceil(this.#windowMs / DEDUPE_BUCKETS_PER_WINDOW)), String(this.#windowMs), String(now)],
    ).then(
      (reply) => {
        const [bucketMs, since] = (reply as string[]).slice(0, 2).map(Number)
        if (!(bucketMs! > 0) || !Number.isFinite(since)) {
          throw new Error(`${dedupeMetaKey(this.#destination)} holds an invalid layout`)
        }
        const stored = (reply as (string | null)[])[2]
        const layout: Layout = {
          bucketMs: bucketMs!,
          legacyUntil: since! + this.#windowMs + this.#legacyGraceMs,
          legacy: stored === 'none' || stored === 'present' ? stored : undefined,
        }
        if (layout.legacy === undefined && now < layout.legacyUntil) this.#legacyCheck = this.#checkLegacy(layout)
        return layout
      },
      (err: unknown) => {
        this.#layout = undefined
        throw err
      },
    )
    return this.#layout
  }

  /**
   * Looks for any key of the previous layout (SCAN with MATCH, on every master of a cluster), in the background:
   * lookups go on reading the previous layout meanwhile. The verdict is stored with the layout (HSETNX: the first
   * replica's stands) so other replicas and restarts do not search again. Only keys present at the first search
   * count: an old replica that had delivered nothing within the window and delivers its first message during the
   * upgrade is not seen (docs/adr/0012-compact-dedupe.md).
   */
  async #checkLegacy(layout: Layout): Promise<void> {
    const pattern = `${globLiteral(dedupeKey(this.#destination, ''))}*`
    const nodes = this.#redis.isCluster ? (this.#redis as Cluster).nodes('master') : [this.#redis as Redis]
    try {
      let found = false
      for (const node of nodes) {
        let cursor = '0'
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', LEGACY_SCAN_COUNT)
          cursor = next
          found = keys.length > 0
        } while (cursor !== '0' && !found)
        if (found) break
      }
      const meta = dedupeMetaKey(this.#destination)
      await this.#redis.hsetnx(meta, 'legacy', found ? 'present' : 'none')
      const stored = await this.#redis.hget(meta, 'legacy')
      if (stored === 'none' || stored === 'present') layout.legacy = stored
    } catch {
      // Redis unavailable: lookups keep reading the previous layout; the next process (or instance) looks again.
    }
  }

  async #script(script: Script, keys: readonly string[], args: readonly (string | Buffer)[]): Promise<unknown> {
    try {
      return await this.#redis.evalsha(script.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return this.#redis.eval(script.source, keys.length, ...keys, ...args)
    }
  }
}

interface Script {
  source: string
  sha: string
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

// Linear hashing (Litwin 1980): a bucket with level l and split pointer p has 2^l + p hashes; an id whose
// 32-bit h (field bytes 2–5) gives a = h mod 2^l lives in hash a, or in hash h mod 2^(l+1) when a < p.
const ADDRESS = `
local function h(field)
  local a, b, c, d = string.byte(field, 2, 5)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local function address(x, level, split)
  local a = x % 2 ^ level
  if a < split then a = x % 2 ^ (level + 1) end
  return a
end
`

// ARGV: bucket length for this window, the window, now. The stored bucket length is kept while the window spans
// 1 to MAX_BUCKETS_PER_WINDOW of it (a changed window keeps finding the ids already remembered); beyond that it is
// replaced, and the buckets written with the old length expire on their own.
const LAYOUT = script(`local stored = tonumber(redis.call('HGET', KEYS[1], 'bucket-ms'))
local window = tonumber(ARGV[2])
if not stored or stored <= 0 or stored > window or window / stored > ${MAX_BUCKETS_PER_WINDOW} then
  redis.call('HSET', KEYS[1], 'bucket-ms', ARGV[1])
end
redis.call('HSETNX', KEYS[1], 'compact-since', ARGV[3])
return redis.call('HMGET', KEYS[1], 'bucket-ms', 'compact-since', 'legacy')`)

// Unpacks packFields' argument into a table of fields.
const UNPACK = `
local function unpack_fields(packed)
  local fields, at = {}, 1
  while at <= #packed do
    local len = string.byte(packed, at)
    fields[#fields + 1] = string.sub(packed, at + 1, at + len)
    at = at + 1 + len
  end
  return fields
end
`

// KEYS: bucket keys; ARGV[1]: the packed fields. Returns the 1-based positions of the fields found in any bucket.
const LOOKUP = script(`${ADDRESS}${UNPACK}
local fields = unpack_fields(ARGV[1])
local found, hit = {}, {}
for k = 1, #KEYS do
  local state = redis.call('HMGET', KEYS[k], 'l', 'p')
  if state[1] then
    local level, split = tonumber(state[1]), tonumber(state[2])
    local prefix = KEYS[k] .. ':'
    for i = 1, #fields do
      if not hit[i] and redis.call('HEXISTS', prefix .. address(h(fields[i]), level, split), fields[i]) == 1 then
        hit[i] = true
        found[#found + 1] = i
      end
    end
  end
end
return found`)

// ARGV: expire-at (epoch ms), load, the packed fields. Adds the fields, then splits hashes while the average load is
// exceeded.
// Every key of the bucket gets the same PEXPIREAT, so the bucket disappears as a whole.
const MARK = script(`${ADDRESS}${UNPACK}
local expireAt, load = ARGV[1], tonumber(ARGV[2])
local fields = unpack_fields(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'l', 'p', 'n')
local level, split, count = tonumber(state[1]) or 0, tonumber(state[2]) or 0, tonumber(state[3]) or 0
local prefix = KEYS[1] .. ':'
local touched = {}
for i = 1, #fields do
  local key = prefix .. address(h(fields[i]), level, split)
  if redis.call('HSETNX', key, fields[i], '') == 1 then
    count = count + 1
    touched[key] = true
  end
end
while count > load * (2 ^ level + split) do
  local from = prefix .. split
  local to = prefix .. (split + 2 ^ level)
  local moving = {}
  for _, field in ipairs(redis.call('HKEYS', from)) do
    if h(field) % 2 ^ (level + 1) ~= split then moving[#moving + 1] = field end
  end
  if #moving > 0 then
    local entries = {}
    for _, field in ipairs(moving) do
      entries[#entries + 1] = field
      entries[#entries + 1] = ''
    end
    redis.call('HSET', to, unpack(entries))
    redis.call('HDEL', from, unpack(moving))
    touched[to] = true
  end
  split = split + 1
  if split == 2 ^ level then
    level = level + 1
    split = 0
  end
end
for key in pairs(touched) do redis.call('PEXPIREAT', key, expireAt) end
redis.call('HSET', KEYS[1], 'l', level, 'p', split, 'n', count)
redis.call('PEXPIREAT', KEYS[1], expireAt)
return count`)

/**
 * Coalesces concurrent markDelivered calls: the first goes once the event loop's current I/O callbacks have run
 * (with the ids of the calls they made); while it is in flight the ids of later calls gather and go together in the
 * next call, and every caller resolves when its own ids are remembered. With many
 * small requests in flight (Braze, mParticle) this turns a script call per request into a few per round trip.
 */
export class DeliveredMarks {
  readonly #dedupe: Dedupe
  #gathering: { ids: string[]; settle: { resolve: () => void; reject: (err: unknown) => void }[] } | undefined
  #inFlight = false
  #scheduled = false

  constructor(dedupe: Dedupe) {
    this.#dedupe = dedupe
  }

  mark(messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const group = (this.#gathering ??= { ids: [], settle: [] })
      for (const id of messageIds) group.ids.push(id)
      group.settle.push({ resolve, reject })
      // Not at once but after the I/O callbacks of this turn of the event loop: the responses that arrived together
      // share one call.
      if (!this.#inFlight && !this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => {
          this.#scheduled = false
          if (!this.#inFlight) this.#send()
        })
      }
    })
  }

  #send(): void {
    const group = this.#gathering
    if (group === undefined) return
    this.#gathering = undefined
    this.#inFlight = true
    this.#dedupe
      .markDelivered(group.ids)
      .then(
        () => group.settle.forEach(({ resolve }) => resolve()),
        (err: unknown) => group.settle.forEach(({ reject }) => reject(err)),
      )
      .finally(() => {
        this.#inFlight = false
        this.#send()
      })
  }
}
