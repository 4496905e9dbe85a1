import type { Redis } from 'ioredis'

export const DEFAULT_DEDUPE_TTL_SECONDS = 7 * 24 * 3600

export function dedupeKey(destination: string, messageId: string): string {
  return `lookstream:dedupe:${destination}:${messageId}`
}

/**
 * A key per (destination, messageId), written only after the destination accepted the message and
 * checked before sending, so replays, redeliveries after a crash and re-executed sends deliver nothing new.
 */
export class Dedupe {
  readonly #redis: Redis
  readonly #destination: string
  readonly #ttlSeconds: number

  constructor(redis: Redis, destination: string, ttlSeconds: number = DEFAULT_DEDUPE_TTL_SECONDS) {
    this.#redis = redis
    this.#destination = destination
    this.#ttlSeconds = ttlSeconds
  }

  /** For each id, whether it was already delivered (one round trip). */
  async wasDelivered(messageIds: readonly string[]): Promise<boolean[]> {
    if (messageIds.length === 0) return []
    const values = await this.#redis.mget(messageIds.map((id) => dedupeKey(this.#destination, id)))
    return values.map((value) => value !== null)
  }

  async markDelivered(messageIds: readonly string[], deliveredAt: number = Date.now()): Promise<void> {
    if (messageIds.length === 0) return
    // One script call per batch instead of a pipelined SET per message: ioredis builds a command object and
    // a promise per pipelined command, which made the dedupe writes the segment service's largest cost.
    const keys = messageIds.map((id) => dedupeKey(this.#destination, id))
    await this.#redis.eval(MARK_DELIVERED, keys.length, ...keys, String(deliveredAt), String(this.#ttlSeconds))
  }
}

const MARK_DELIVERED = `for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2]) end
return #KEYS`
