import { type DestinationId } from '@lookstream/events'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { TSchema } from 'typebox'
import { backoffDelay, type BackoffPolicy } from './backoff.ts'
import type { Dedupe } from './dedupe.ts'
import type { Deliverer, DeliveryJob, FinalOutcome } from './deliverer.ts'
import type { Connection, EncodedItem, HttpDestination } from './destination.ts'
import { PermanentError } from './errors.ts'
import { failureHeaders, historyOf, type DeliveryHistory, type FailureInfo } from './failure-headers.ts'
import type { DestinationMetrics } from './metrics.ts'
import type { RedisGate } from './redis-gate.ts'
import { routeRecord, type InboundRecord } from './route-record.ts'
import { addSendCounts, type SendCountDelta } from './send-counts.ts'

export interface OutboundRecord {
  topic: string
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, string>
}

export interface RetryPolicy {
  /** Delays between retry-topic cycles: exponential from baseMs, capped at maxMs, jittered. */
  delay: BackoffPolicy
  /** Time since the first attempt after which a message still failing goes to the DLQ. */
  windowMs: number
}

export interface ProcessorDeps<Conn extends Connection, Item> {
  destination: HttpDestination<TSchema, Conn, Item>
  connections: ReadonlyMap<string, Conn>
  deliverer: Deliverer<Conn, Item>
  dedupe: Dedupe
  redis: RedisGate
  redisClient: Redis
  metrics: DestinationMetrics
  log: Logger
  retryTopic: string
  dlqTopic: string
  retry: RetryPolicy
  quickAttempts: number
  /** Writes records and resolves once the broker acknowledged all of them. */
  produce(records: OutboundRecord[]): Promise<void>
  signal: AbortSignal
}

interface Failure {
  kind: 'dead-letter'
  reason: string
  errorClass: 'permanent' | 'retryable' | 'auth'
  code: string
}

/**
 * Takes consumed records to a final state each: delivered, skipped, parked in the retry topic or written to
 * the DLQ. Resolves with, per record, whether it is done (its offset may be committed); only a shutdown
 * leaves records not done. Rejects (nothing may be committed) when the retry/DLQ records could not be written.
 */
export async function processRecords<Conn extends Connection, Item>(
  records: readonly InboundRecord[],
  deps: ProcessorDeps<Conn, Item>,
): Promise<boolean[]> {
  const { destination, connections, deliverer, dedupe, redis, metrics, signal } = deps
  const name = destination.name
  const startedAt = Date.now()
  type Settled = FinalOutcome | Failure | 'skip' | 'duplicate'
  const outcomes: Promise<Settled>[] = []
  const histories: (DeliveryHistory | undefined)[] = []
  const sendIds: (string | undefined)[] = []
  const candidates: { index: number; messageId: string; connection: Conn; encoded: EncodedItem<Item> }[] = []

  records.forEach((record, index) => {
    histories.push(record.topic === deps.retryTopic ? historyOf(record) : undefined)
    const route = routeRecord(record, name as DestinationId)
    sendIds.push(route.kind === 'deliver' ? route.sendId : record.headers['lookstream-send-id'])
    if (route.kind === 'skip') {
      metrics.skipped.inc({ destination: name })
      outcomes.push(Promise.resolve('skip'))
      return
    }
    if (route.kind === 'invalid') {
      outcomes.push(Promise.resolve(deadLetter(route.reason, 'LS_DEST_INVALID_MESSAGE')))
      return
    }
    const connection = connections.get(route.connection)
    if (connection === undefined) {
      outcomes.push(
        Promise.resolve(deadLetter(`unknown connection "${route.connection}"`, 'LS_DEST_UNKNOWN_CONNECTION')),
      )
      return
    }
    let item: Item | PermanentError
    try {
      item = destination.toItem(route.message, connection)
    } catch (err) {
      // A mapping bug, not the message's fault: park it, so a fixed release delivers it from the retry topic.
      deps.log.error({ err, offset: record.offset, topic: record.topic }, 'toItem threw; parking the message')
      outcomes.push(Promise.resolve({ kind: 'retry-later', reason: `mapping failed: ${(err as Error).message}` }))
      return
    }
    if (item instanceof PermanentError) {
      outcomes.push(Promise.resolve(deadLetter(item.message, item.code)))
      return
    }
    const json = JSON.stringify(item)
    const bytes = Buffer.byteLength(json)
    if (bytes > destination.limits.maxItemBytes) {
      outcomes.push(
        Promise.resolve(
          deadLetter(
            `item is ${bytes} bytes, over the ${destination.limits.maxItemBytes}-byte limit per event`,
            'LS_DEST_ITEM_TOO_LARGE',
          ),
        ),
      )
      return
    }
    outcomes.push(Promise.resolve('skip')) // replaced below once dedupe has answered
    candidates.push({ index, messageId: route.message.messageId, connection, encoded: { item, json, bytes } })
  })

  const jobs = new Map<number, DeliveryJob<Item>>()
  const delivered = await redis.run(() => dedupe.wasDelivered(candidates.map((c) => c.messageId)), signal)
  const firstById = new Map<string, Promise<FinalOutcome>>()
  candidates.forEach((candidate, position) => {
    if (delivered[position] === true) {
      metrics.duplicates.inc({ destination: name })
      outcomes[candidate.index] = Promise.resolve('duplicate')
      return
    }
    const earlier = firstById.get(candidate.messageId)
    if (earlier !== undefined) {
      // The same message twice in one batch (a replay racing the original): it shares the first one's fate.
      metrics.duplicates.inc({ destination: name })
      outcomes[candidate.index] = earlier.then((o) => (o.kind === 'abandoned' ? o : 'duplicate'))
      return
    }
    const promise = new Promise<FinalOutcome>((resolve) => {
      const job: DeliveryJob<Item> = {
        messageId: candidate.messageId,
        encoded: candidate.encoded,
        attempts: histories[candidate.index]?.attempts ?? 0,
        resolve,
      }
      jobs.set(candidate.index, job)
      deliverer.submit(candidate.connection, job)
    })
    firstById.set(candidate.messageId, promise)
    outcomes[candidate.index] = promise
  })

  const settled = await Promise.all(outcomes)

  const now = Date.now()
  const out: OutboundRecord[] = []
  const done: boolean[] = []
  const counts = new Map<string, SendCountDelta>()
  const count = (index: number, field: keyof SendCountDelta) => {
    const sendId = sendIds[index]
    if (sendId === undefined) return
    const delta = counts.get(sendId) ?? { delivered: 0, failed: 0, deadLettered: 0 }
    delta[field]++
    counts.set(sendId, delta)
  }

  settled.forEach((outcome, index) => {
    const record = records[index]!
    const history = histories[index] ?? {
      originalTopic: record.topic,
      originalPartition: record.partition,
      originalOffset: record.offset,
      attempts: 0,
      firstAttemptAt: undefined,
    }
    const firstAttemptAt = history.firstAttemptAt ?? startedAt
    const attempts = jobs.get(index)?.attempts ?? history.attempts
    if (outcome === 'skip' || outcome === 'duplicate') {
      done.push(true)
      return
    }
    switch (outcome.kind) {
      case 'abandoned':
        done.push(false)
        return
      case 'delivered':
        count(index, 'delivered')
        done.push(true)
        return
      case 'retry-later': {
        if (now - firstAttemptAt >= deps.retry.windowMs) {
          const hours = Math.round((deps.retry.windowMs / 3_600_000) * 100) / 100
          out.push(
            dlqRecord(record, history, {
              error: `retry window of ${hours} h exceeded; last error: ${outcome.reason}`,
              errorClass: 'retryable',
              code: 'LS_DEST_RETRY_WINDOW_EXCEEDED',
              attempts,
              firstAttemptAt,
              lastAttemptAt: now,
            }),
          )
          metrics.deadLettered.inc({ destination: name, reason: 'LS_DEST_RETRY_WINDOW_EXCEEDED' })
          count(index, 'deadLettered')
        } else {
          const cycle = Math.max(1, Math.ceil(attempts / Math.max(1, deps.quickAttempts)))
          const retryAt = now + backoffDelay(cycle, deps.retry.delay)
          out.push({
            topic: deps.retryTopic,
            key: record.key,
            value: record.value,
            headers: failureHeaders(record, history, {
              error: outcome.reason,
              errorClass: 'retryable',
              code: 'LS_DEST_RETRYABLE',
              attempts,
              firstAttemptAt,
              lastAttemptAt: now,
              retryAt,
            }),
          })
          if (history.attempts === 0) count(index, 'failed')
        }
        done.push(true)
        return
      }
      case 'dead-letter':
        out.push(
          dlqRecord(record, history, {
            error: outcome.reason,
            errorClass: outcome.errorClass,
            code: outcome.code,
            attempts,
            firstAttemptAt,
            lastAttemptAt: now,
          }),
        )
        metrics.deadLettered.inc({ destination: name, reason: outcome.code })
        count(index, 'deadLettered')
        done.push(true)
        return
    }
  })

  if (out.length > 0) await deps.produce(out)
  await redis
    .run(() => addSendCounts(deps.redisClient, counts), signal)
    .catch((err: unknown) => {
      // Counts are progress reporting: a shutdown must not hold back committing delivered work for them.
      if (!signal.aborted) throw err
    })
  return done

  function dlqRecord(record: InboundRecord, history: DeliveryHistory, failure: FailureInfo): OutboundRecord {
    return {
      topic: deps.dlqTopic,
      key: record.key,
      value: record.value,
      headers: failureHeaders(record, history, failure),
    }
  }
}

function deadLetter(reason: string, code: string): Failure {
  return { kind: 'dead-letter', reason, errorClass: 'permanent', code }
}
