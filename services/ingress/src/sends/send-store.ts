import { SEND_INDEX_KEY, sendRecordKey, type RejectReason } from '@lookstream/events'
import { type RedisClient } from '@lookstream/redis'

// One hash per send, `lookstream:{sends}:send:<id>`, and a sorted set `lookstream:{sends}:index` of ids by start
// time for listing. Destination services HINCRBY `delivered`, `failed`, `dead_lettered` and `already_delivered` (rows
// their dedupe store knew as delivered by an earlier send of the same run) on the same hash; a file
// destination sets `file` (where the send's file is) or `file_error` (why there is none).
// Both expire after SEND_TTL_SECONDS; stale ids in the index are skipped and trimmed when listed. The {sends}
// hash tag keeps all of them on one Redis Cluster slot, which the MULTI and the listing pipeline need.

const INDEX = SEND_INDEX_KEY
const keyOf = sendRecordKey

export interface SendStart {
  sendId: string
  action: string
  destination: string
  connection: string
  lookId?: string | undefined
  scheduledPlanId?: string | undefined
  webhookId?: string | undefined
  /** 'dry_run': nothing was produced (the send history shows the dry run's report). */
  mode?: 'send' | 'dry_run'
  startedAt: Date
}

export interface SendRecord {
  sendId: string
  action: string
  destination: string
  connection: string
  lookId?: string
  scheduledPlanId?: string
  webhookId?: string
  mode?: 'send' | 'dry_run'
  status: 'running' | 'succeeded' | 'failed'
  received: number
  accepted: number
  rejected: number
  rejectReasons: RejectReason[]
  message?: string
  startedAt: string
  finishedAt?: string
  delivered?: number
  failed?: number
  deadLettered?: number
  /** Rows the destination had delivered before (an earlier send of the same run): nothing sent again. */
  alreadyDelivered?: number
  skippedUnchanged?: number
  /** Where a file destination (Recurly Engage) published the send's file. */
  file?: string
  /** Why a file destination wrote no file for the send. */
  fileError?: string
}

export interface SendProgress {
  received: number
  accepted: number
  rejected: number
  rejectReasons: readonly RejectReason[]
  /** Rows left out as unchanged since the schedule's last run ("changed rows only"). */
  skippedUnchanged?: number
}

export interface SendStore {
  start(send: SendStart): Promise<void>
  progress(sendId: string, progress: SendProgress): Promise<void>
  finish(
    sendId: string,
    progress: SendProgress & { status: 'succeeded' | 'failed'; message: string; finishedAt: Date },
  ): Promise<void>
  get(sendId: string): Promise<SendRecord | undefined>
  list(options: { limit: number; before?: number }): Promise<{ sends: SendRecord[]; next?: number }>
}

function counts(progress: SendProgress): Record<string, string> {
  return {
    received: String(progress.received),
    accepted: String(progress.accepted),
    rejected: String(progress.rejected),
    reject_reasons: JSON.stringify(progress.rejectReasons),
    ...(progress.skippedUnchanged === undefined ? {} : { skipped_unchanged: String(progress.skippedUnchanged) }),
  }
}

function toRecord(hash: Record<string, string>): SendRecord | undefined {
  if (hash.send_id === undefined) return undefined
  const optional = (name: string) => (hash[name] === undefined || hash[name] === '' ? undefined : hash[name])
  const number = (name: string) => (hash[name] === undefined ? undefined : Number(hash[name]))
  const record: SendRecord = {
    sendId: hash.send_id,
    action: hash.action ?? '',
    destination: hash.destination ?? '',
    connection: hash.connection ?? '',
    status: (hash.status ?? 'running') as SendRecord['status'],
    received: number('received') ?? 0,
    accepted: number('accepted') ?? 0,
    rejected: number('rejected') ?? 0,
    rejectReasons: JSON.parse(hash.reject_reasons ?? '[]') as RejectReason[],
    startedAt: hash.started_at ?? '',
  }
  const extras = {
    lookId: optional('look_id'),
    scheduledPlanId: optional('scheduled_plan_id'),
    webhookId: optional('webhook_id'),
    mode: optional('mode'),
    message: optional('message'),
    finishedAt: optional('finished_at'),
    delivered: number('delivered'),
    failed: number('failed'),
    deadLettered: number('dead_lettered'),
    alreadyDelivered: number('already_delivered'),
    skippedUnchanged: number('skipped_unchanged'),
    file: optional('file'),
    fileError: optional('file_error'),
  }
  for (const [name, value] of Object.entries(extras)) {
    if (value !== undefined) (record as unknown as Record<string, unknown>)[name] = value
  }
  return record
}

export function createSendStore(redis: RedisClient, ttlSeconds: number): SendStore {
  return {
    async start(send) {
      const key = keyOf(send.sendId)
      await redis
        .multi()
        .hset(key, {
          send_id: send.sendId,
          action: send.action,
          destination: send.destination,
          connection: send.connection,
          look_id: send.lookId ?? '',
          scheduled_plan_id: send.scheduledPlanId ?? '',
          webhook_id: send.webhookId ?? '',
          mode: send.mode ?? 'send',
          status: 'running',
          started_at: send.startedAt.toISOString(),
          ...counts({ received: 0, accepted: 0, rejected: 0, rejectReasons: [] }),
        })
        .expire(key, ttlSeconds)
        .zadd(INDEX, send.startedAt.getTime(), send.sendId)
        .expire(INDEX, ttlSeconds)
        .exec()
    },
    async progress(sendId, progress) {
      await redis.hset(keyOf(sendId), counts(progress))
    },
    async finish(sendId, progress) {
      await redis.hset(keyOf(sendId), {
        ...counts(progress),
        status: progress.status,
        message: progress.message,
        finished_at: progress.finishedAt.toISOString(),
      })
    },
    async get(sendId) {
      return toRecord(await redis.hgetall(keyOf(sendId)))
    },
    async list({ limit, before }) {
      const max = before === undefined ? '+inf' : `(${before}`
      const entries = await redis.zrevrangebyscore(INDEX, max, '-inf', 'WITHSCORES', 'LIMIT', 0, limit)
      const ids: string[] = []
      const scores: number[] = []
      for (let i = 0; i < entries.length; i += 2) {
        ids.push(entries[i]!)
        scores.push(Number(entries[i + 1]))
      }
      // The next page starts below the last start time: every other send that started in that same millisecond
      // joins this page (a page can then hold a few more than `limit`), or paging would skip it.
      const lastScore = scores[scores.length - 1]
      const full = ids.length === limit && lastScore !== undefined
      if (full) {
        const listed = new Set(ids)
        for (const id of await redis.zrevrangebyscore(INDEX, lastScore, lastScore)) {
          if (listed.has(id)) continue
          ids.push(id)
          scores.push(lastScore)
        }
      }
      const pipeline = redis.pipeline()
      for (const id of ids) pipeline.hgetall(keyOf(id))
      const results = (await pipeline.exec()) ?? []
      const sends: SendRecord[] = []
      const stale: string[] = []
      results.forEach(([, hash], index) => {
        const record = toRecord((hash ?? {}) as Record<string, string>)
        if (record) sends.push(record)
        else stale.push(ids[index]!)
      })
      if (stale.length > 0) await redis.zrem(INDEX, ...stale)
      return full ? { sends, next: lastScore } : { sends }
    },
  }
}
