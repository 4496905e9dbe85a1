import { sendRecordKey } from '@lookstream/events'
import type { RedisClient } from '@lookstream/redis'

/** The ingress's send record (a Redis hash per send, read by GET /sends/:id). */
export { sendRecordKey }

export interface SendCountDelta {
  delivered: number
  /** Messages that failed transiently and were parked in the retry topic for the first time. */
  failed: number
  deadLettered: number
  /**
   * Messages the dedupe store knew as delivered before: rows an earlier send of the same run delivered (Looker
   * re-running a schedule, a send executed again), or a message of this send delivered before a restart that kept
   * it from being committed (then also in `delivered` if its count was written). So `delivered + already_delivered`
   * can exceed the send's accepted rows by the redeliveries after restarts; readers clamp.
   */
  alreadyDelivered: number
}

// Only an existing record is counted into: a send id from another producer, or a record past its TTL, must not
// leave a hash behind that never expires.
const ADD_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(ARGV[1]) > 0 then redis.call('HINCRBY', KEYS[1], 'delivered', ARGV[1]) end
if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', KEYS[1], 'failed', ARGV[2]) end
if tonumber(ARGV[3]) > 0 then redis.call('HINCRBY', KEYS[1], 'dead_lettered', ARGV[3]) end
if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', KEYS[1], 'already_delivered', ARGV[4]) end
return 1
`

/**
 * Adds this destination's counts to each send's record: one pipeline per processed Kafka batch (every send key
 * shares one Redis Cluster slot, so the pipeline also runs on a cluster).
 */
export async function addSendCounts(redis: RedisClient, deltas: ReadonlyMap<string, SendCountDelta>): Promise<void> {
  if (deltas.size === 0) return
  const pipeline = redis.pipeline()
  for (const [sendId, delta] of deltas) {
    pipeline.eval(
      ADD_IF_EXISTS,
      1,
      sendRecordKey(sendId),
      delta.delivered,
      delta.failed,
      delta.deadLettered,
      delta.alreadyDelivered,
    )
  }
  const results = await pipeline.exec()
  const failed = results?.find(([err]) => err !== null)
  if (failed?.[0]) throw failed[0]
}
