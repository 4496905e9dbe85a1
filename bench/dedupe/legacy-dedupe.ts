// The previous dedupe layout, kept as the benchmark's reference: one key per (destination, messageId), SET with
// EX after acceptance (one script call per batch), MGET before sending. Its keys are still read by the runtime
// during a rollout (packages/destination/src/dedupe.ts, dedupeKey).
import { dedupeKey } from '@lookstream/destination'
import type { Redis } from 'ioredis'

const MARK_DELIVERED = `for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2]) end
return #KEYS`

export class LegacyDedupe {
  readonly #redis: Redis
  readonly #destination: string
  readonly #ttlSeconds: number

  constructor(redis: Redis, destination: string, ttlSeconds: number) {
    this.#redis = redis
    this.#destination = destination
    this.#ttlSeconds = ttlSeconds
  }

  async wasDelivered(messageIds: readonly string[]): Promise<boolean[]> {
    if (messageIds.length === 0) return []
    const values = await this.#redis.mget(messageIds.map((id) => dedupeKey(this.#destination, id)))
    return values.map((value) => value !== null)
  }

  async markDelivered(messageIds: readonly string[], deliveredAt: number = Date.now()): Promise<void> {
    if (messageIds.length === 0) return
    const keys = messageIds.map((id) => dedupeKey(this.#destination, id))
    await this.#redis.eval(MARK_DELIVERED, keys.length, ...keys, String(deliveredAt), String(this.#ttlSeconds))
  }
}
