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
    const pipeline = this.#redis.pipeline()
    for (const id of messageIds)
      pipeline.set(dedupeKey(this.#destination, id), String(deliveredAt), 'EX', this.#ttlSeconds)
    const results = await pipeline.exec()
    const failed = results?.find(([err]) => err !== null)
    if (failed?.[0]) throw failed[0]
  }
}
