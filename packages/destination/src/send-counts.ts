import type { Redis } from 'ioredis'

/** The ingress's send record (a Redis hash per send, read by GET /sends/:id). */
export function sendRecordKey(sendId: string): string {
  return `lookstream:send:${sendId}`
}

export interface SendCountDelta {
  delivered: number
  /** Messages that failed transiently and were parked in the retry topic for the first time. */
  failed: number
  deadLettered: number
}

/** Adds this destination's counts to each send's record: one pipeline per processed Kafka batch. */
export async function addSendCounts(redis: Redis, deltas: ReadonlyMap<string, SendCountDelta>): Promise<void> {
  if (deltas.size === 0) return
  const pipeline = redis.pipeline()
  for (const [sendId, delta] of deltas) {
    const key = sendRecordKey(sendId)
    if (delta.delivered > 0) pipeline.hincrby(key, 'delivered', delta.delivered)
    if (delta.failed > 0) pipeline.hincrby(key, 'failed', delta.failed)
    if (delta.deadLettered > 0) pipeline.hincrby(key, 'dead_lettered', delta.deadLettered)
  }
  const results = await pipeline.exec()
  const failed = results?.find(([err]) => err !== null)
  if (failed?.[0]) throw failed[0]
}
