import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { TSchema } from 'typebox'
import { backoffDelay, type BackoffPolicy } from './backoff.ts'
import { DeliveredMarks, type Dedupe } from './dedupe.ts'
import type {
  BatchLimits,
  Connection,
  EncodedItem,
  HttpDestination,
  HttpRequest,
  HttpResponse,
  ItemOutcome,
  RateFeedback,
} from './destination.ts'
import { DestinationError, RetryableError, type DestinationErrorCode, type ErrorClass } from './errors.ts'
import type { DestinationMetrics } from './metrics.ts'
import { bisect } from './pack-batches.ts'
import { RateLimiter, type RateLimitOptions } from './rate-limiter.ts'
import type { RedisGate } from './redis-gate.ts'

/** What finally happened to one message in this process. */
export type FinalOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry-later'; reason: string; code: DestinationErrorCode }
  | { kind: 'dead-letter'; reason: string; errorClass: ErrorClass; code: DestinationErrorCode }
  /** Shutdown interrupted the wait for a retry: the offset stays uncommitted and the message comes back. */
  | { kind: 'abandoned' }

export interface DeliveryJob<Item> {
  messageId: string
  encoded: EncodedItem<Item>
  /** Requests that carried this message so far, across retry-topic cycles. */
  attempts: number
  resolve(outcome: FinalOutcome): void
}

export interface DeliveryPolicy {
  /** Requests per message before it is parked in the retry topic. */
  quickAttempts: number
  backoff: BackoffPolicy
  /** Probe interval while a connection's credentials are refused. */
  authBackoff: BackoffPolicy
  /** Concurrent requests per connection and batch key. */
  maxInFlightPerConnection: number
  /** Overrides the destination's linger for every batch key. */
  lingerMs?: number
}

export interface HttpClient {
  send(req: HttpRequest, signal?: AbortSignal): Promise<HttpResponse>
}

export interface DelivererDeps<Conn extends Connection, Item> {
  destination: HttpDestination<TSchema, Conn, Item>
  http: HttpClient
  rateLimiter: RateLimiter
  dedupe: Dedupe
  redis: RedisGate
  metrics: DestinationMetrics
  log: Logger
  policy: DeliveryPolicy
  /** Aborted on shutdown: waits end, in-flight requests finish. */
  signal: AbortSignal
}

interface AttemptResult<Item> {
  retry: { job: DeliveryJob<Item>; reason: string; code: DestinationErrorCode; retryAfterMs: number | undefined }[]
  auth: { job: DeliveryJob<Item>; reason: string }[]
}

/**
 * Per (connection, batch key): a queue packed into batches by count and bytes after a short linger, a bounded
 * in-flight window.
 */
class Lane<Conn extends Connection, Item> {
  /** Queued jobs are `#queue[#head…]`: a batch is taken by moving `#head`, not by shifting the array. */
  #queue: (DeliveryJob<Item> | undefined)[] = []
  #head = 0
  #queuedBytes = 0
  #oldestAt = 0
  #timer: NodeJS.Timeout | undefined
  #inFlight = 0
  #paused = false
  #flushAll = false
  readonly #deliverer: Deliverer<Conn, Item>
  readonly connection: Conn
  readonly limits: BatchLimits
  readonly #idle: (() => void)[] = []

  constructor(deliverer: Deliverer<Conn, Item>, connection: Conn, limits: BatchLimits) {
    this.#deliverer = deliverer
    this.connection = connection
    this.limits = limits
  }

  get busy(): boolean {
    return this.#queued > 0 || this.#inFlight > 0
  }

  get #queued(): number {
    return this.#queue.length - this.#head
  }

  add(jobs: readonly DeliveryJob<Item>[]): void {
    if (jobs.length === 0) return
    if (this.#queued === 0) this.#oldestAt = Date.now()
    for (const job of jobs) {
      this.#queue.push(job)
      this.#queuedBytes += job.encoded.bytes + 1
    }
    this.drain()
  }

  set paused(value: boolean) {
    this.#paused = value
    if (!value) this.drain()
  }

  /** Shutdown cut the waiting short: queued jobs are given back uncommitted. */
  abandonQueued(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const jobs = this.#queue.slice(this.#head) as DeliveryJob<Item>[]
    this.#queue = []
    this.#head = 0
    this.#queuedBytes = 0
    for (const job of jobs) job.resolve({ kind: 'abandoned' })
    if (!this.busy) for (const resolve of this.#idle.splice(0)) resolve()
  }

  /** Sends what is queued without waiting for the linger (shutdown). */
  flush(): void {
    this.#flushAll = true
    this.drain()
  }

  whenIdle(): Promise<void> {
    if (!this.busy) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #full(): boolean {
    const { maxBatchItems, maxBatchBytes } = this.limits
    return this.#queued >= maxBatchItems || this.#queuedBytes >= maxBatchBytes
  }

  drain(): void {
    const linger = this.#deliverer.policy.lingerMs ?? this.limits.lingerMs
    while (!this.#paused && this.#queued > 0 && this.#inFlight < this.#deliverer.policy.maxInFlightPerConnection) {
      const lingered = Date.now() - this.#oldestAt >= linger
      if (!this.#full() && !lingered && !this.#flushAll) {
        if (this.#timer === undefined) {
          this.#timer = setTimeout(
            () => {
              this.#timer = undefined
              this.drain()
            },
            Math.max(1, linger - (Date.now() - this.#oldestAt)),
          )
        }
        return
      }
      const batch = this.#take()
      this.#inFlight++
      void this.#deliverer.deliver(batch, this).finally(() => {
        this.#inFlight--
        this.drain()
        if (!this.busy) for (const resolve of this.#idle.splice(0)) resolve()
      })
    }
  }

  #take(): DeliveryJob<Item>[] {
    const { maxBatchItems, maxBatchBytes } = this.limits
    let count = 0
    let bytes = 0
    const head = this.#head
    const queued = this.#queued
    while (count < queued && count < maxBatchItems) {
      const next = this.#queue[head + count]!.encoded.bytes
      const added = count === 0 ? next : bytes + 1 + next
      if (count > 0 && added > maxBatchBytes) break
      bytes = added
      count++
    }
    // Taking from the front moves the head: splicing the front off copies the rest of the queue, a few thousand
    // jobs per batch. The taken slots are dropped once they are the larger part of the array, or the queue is empty.
    const batch: DeliveryJob<Item>[] = new Array<DeliveryJob<Item>>(count)
    for (let i = 0; i < count; i++) {
      batch[i] = this.#queue[head + i]!
      // A taken job is the batch's now: the queue must not keep it (and its item) alive until the next compaction.
      this.#queue[head + i] = undefined
    }
    this.#head = head + count
    if (this.#head === this.#queue.length) {
      this.#queue = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    for (const job of batch) this.#queuedBytes -= job.encoded.bytes + 1
    this.#oldestAt = Date.now()
    return batch
  }
}

/**
 * Sends jobs in batches per connection: shared rate limit, keep-alive HTTP, classification down to single
 * items (bisecting batches rejected as a whole), quick retries honouring Retry-After, pause on 401/403.
 */
export class Deliverer<Conn extends Connection, Item> {
  readonly #deps: DelivererDeps<Conn, Item>
  readonly #lanes = new Map<string, Lane<Conn, Item>>()
  readonly #feedbacks = new Map<string, RateFeedback>()
  readonly policy: DeliveryPolicy
  /** Caps the destination's items per request (DELIVERY_MAX_BATCH_ITEMS); never raises them. */
  readonly #maxBatchItems: number
  /** Accepted ids are remembered through this: concurrent requests' ids share script calls. */
  readonly #marks: DeliveredMarks

  constructor(deps: DelivererDeps<Conn, Item>, options: { maxBatchItems?: number } = {}) {
    this.#deps = deps
    this.policy = deps.policy
    this.#maxBatchItems = options.maxBatchItems ?? Infinity
    this.#marks = new DeliveredMarks(deps.dedupe)
    // A paused connection (401/403) or a long Retry-After would otherwise hold queued jobs past the shutdown.
    deps.signal.addEventListener('abort', () => {
      for (const lane of this.#lanes.values()) lane.abandonQueued()
    })
  }

  submit(connection: Conn, job: DeliveryJob<Item>): void {
    this.submitAll(connection, [job])
  }

  /**
   * Queues jobs for one connection together: each lane (connection and batch key) packs its batches once they
   * are all queued.
   */
  submitAll(connection: Conn, jobs: readonly DeliveryJob<Item>[]): void {
    if (this.#deps.signal.aborted) {
      for (const job of jobs) job.resolve({ kind: 'abandoned' })
      return
    }
    const { destination } = this.#deps
    if (destination.batchKey === undefined) {
      this.#lane(connection, '').add(jobs)
      return
    }
    // Runs of one key go to their lane together (a send's items mostly share one key).
    let run: DeliveryJob<Item>[] = []
    let runKey: string | undefined
    for (const job of jobs) {
      const key = destination.batchKey(job.encoded.item)
      if (runKey !== undefined && key !== runKey) {
        this.#lane(connection, runKey).add(run)
        run = []
      }
      runKey = key
      run.push(job)
    }
    if (runKey !== undefined) this.#lane(connection, runKey).add(run)
  }

  #lane(connection: Conn, batchKey: string): Lane<Conn, Item> {
    const id = `${connection.name}\u0000${batchKey}`
    let lane = this.#lanes.get(id)
    if (lane === undefined) {
      const { destination } = this.#deps
      const limits = destination.limitsFor?.(batchKey) ?? destination.limits
      lane = new Lane(this, connection, {
        ...limits,
        maxBatchItems: Math.max(
          1,
          Math.min(limits.maxBatchItems, this.#maxBatchItems, connection.maxBatchItems ?? Infinity),
        ),
      })
      this.#lanes.set(id, lane)
    }
    return lane
  }

  /** Sends everything queued now and resolves once no request is in flight. */
  async drain(): Promise<void> {
    for (const lane of this.#lanes.values()) lane.flush()
    await Promise.all([...this.#lanes.values()].map((lane) => lane.whenIdle()))
  }

  /** The destination's usage reader of a connection, made on first use (undefined when it has none). */
  #feedback(connection: Conn): RateFeedback | undefined {
    const destination = this.#deps.destination
    if (destination.rateFeedback === undefined) return undefined
    let feedback = this.#feedbacks.get(connection.name)
    if (feedback === undefined) {
      feedback = destination.rateFeedback(connection)
      this.#feedbacks.set(connection.name, feedback)
    }
    return feedback
  }

  /** The shared budgets a request of this connection draws on: requests, and items where the API counts them. */
  #budgets(connection: Conn): { key: string; options: RateLimitOptions; perItem: boolean }[] {
    const key = RateLimiter.key(this.#deps.destination.name, connection.rateLimitScope ?? connection.name)
    const shared: Partial<RateLimitOptions> = {}
    if (connection.rateLimitMaxLateMs !== undefined) shared.maxLateMs = connection.rateLimitMaxLateMs
    if (connection.rateLimitDecreaseFactor !== undefined) shared.decreaseFactor = connection.rateLimitDecreaseFactor
    const budgets = [{ key, options: { rps: connection.rateLimitRps, ...shared }, perItem: false }]
    if (connection.itemRatePerSecond !== undefined) {
      const options: RateLimitOptions = { rps: connection.itemRatePerSecond, ...shared }
      if (connection.itemBurst !== undefined) options.burst = connection.itemBurst
      budgets.push({ key: `${key}:items`, options, perItem: true })
    }
    return budgets
  }

  async deliver(jobs: DeliveryJob<Item>[], lane: Lane<Conn, Item>): Promise<void> {
    const { destination, metrics, signal, log } = this.#deps
    const connection = lane.connection
    let pending = jobs
    let round = 0
    let authRound = 0
    try {
      while (pending.length > 0) {
        round++
        const result = await this.#attempt(pending, connection)
        const next: DeliveryJob<Item>[] = []
        let waitMs = 0
        if (result.auth.length > 0) {
          authRound++
          if (authRound === 1) {
            lane.paused = true
            metrics.connectionPaused.set({ destination: destination.name, connection: connection.name }, 1)
            log.error(
              { connection: connection.name, reason: result.auth[0]!.reason },
              'destination refused the credentials: connection paused, probing until they work',
            )
          }
          next.push(...result.auth.map((entry) => entry.job))
          waitMs = backoffDelay(authRound, this.policy.authBackoff)
        } else if (authRound > 0) {
          authRound = 0
          lane.paused = false
          metrics.connectionPaused.set({ destination: destination.name, connection: connection.name }, 0)
          log.info({ connection: connection.name }, 'credentials accepted again: connection resumed')
        }
        for (const entry of result.retry) {
          if (round < this.policy.quickAttempts) {
            next.push(entry.job)
            waitMs = Math.max(waitMs, backoffDelay(round, this.policy.backoff), entry.retryAfterMs ?? 0)
          } else {
            metrics.retries.inc({ destination: destination.name, stage: 'topic' })
            entry.job.resolve({ kind: 'retry-later', reason: entry.reason, code: entry.code })
          }
        }
        pending = next
        if (pending.length === 0) break
        metrics.retries.inc({ destination: destination.name, stage: 'in_process' }, pending.length)
        // No request before the destination's Retry-After has elapsed: the wait covers the longest one asked.
        await sleep(waitMs, undefined, { signal })
      }
    } catch (err) {
      // Settled jobs ignore a second resolve, so giving back the whole pending list is safe.
      if (signal.aborted) {
        for (const job of pending) job.resolve({ kind: 'abandoned' })
      } else {
        // Not a classified failure: a bug (in a classifier, a builder, here). Parking keeps the data.
        log.error({ err, connection: connection.name }, 'unexpected error while delivering; parking the batch')
        const reason = `unexpected error: ${err instanceof Error ? err.message : String(err)}`
        for (const job of pending) job.resolve({ kind: 'retry-later', reason, code: 'LS_DEST_INTERNAL' })
      }
    } finally {
      if (authRound > 0) {
        lane.paused = false
        metrics.connectionPaused.set({ destination: destination.name, connection: connection.name }, 0)
      }
    }
  }

  /** One request for these jobs (more when the destination asks to bisect); resolves final outcomes. */
  async #attempt(jobs: DeliveryJob<Item>[], connection: Conn): Promise<AttemptResult<Item>> {
    const { destination, http, rateLimiter, redis, metrics, signal } = this.#deps
    const budgets = this.#budgets(connection)
    const reservation = await redis.run(
      () =>
        rateLimiter.reserve(
          budgets.map((budget) => ({
            key: budget.key,
            options: budget.options,
            cost: budget.perItem ? jobs.length : 1,
          })),
          signal,
        ),
      signal,
    )
    const labels = { destination: destination.name, connection: connection.name }
    metrics.rateLimitWait.observe(labels, reservation.waitedMs / 1000)
    if (reservation.late > 0) metrics.rateLimitLate.inc(labels, reservation.late)

    const encoded = jobs.map((job) => job.encoded)
    const request = destination.buildRequest(encoded, connection, new Date())
    metrics.batchSize.observe({ destination: destination.name }, jobs.length)
    metrics.batchBytes.observe({ destination: destination.name }, Buffer.byteLength(request.body))
    for (const job of jobs) job.attempts++

    const started = performance.now()
    let outcomes: ItemOutcome[]
    try {
      const response = await http.send(request)
      metrics.requestDuration.observe(
        { destination: destination.name, status: String(response.status) },
        (performance.now() - started) / 1000,
      )
      const classification = destination.classify(response, encoded, request)
      const hint = this.#feedback(connection)?.(response, {
        rate: reservation.rates.at(-1)!,
        configuredRate: budgets.at(-1)!.options.rps,
        bookedAt: reservation.sendAt,
      })
      // A share out of (0, 1] is a bug in the destination's reader: the hint is dropped (and said), the response
      // is still classified; checked here because a throw inside redis.run would be retried as a Redis outage.
      if (hint !== undefined && !(hint.share > 0 && hint.share <= 1)) {
        this.#deps.log.error(
          { connection: connection.name, share: String(hint.share) },
          'usage hint ignored: its share must be in (0, 1]',
        )
      } else if (hint !== undefined) {
        const share = hint.share
        metrics.rateHintShare.set(labels, share)
        metrics.rateHints.inc(labels)
        await redis.run(() => rateLimiter.slowTo(budgets, share), signal)
      }
      if (response.status === 429) {
        const wait = outcomesRetryAfter(classification) ?? backoffDelay(1, this.policy.backoff)
        for (const budget of budgets) {
          await redis.run(() => rateLimiter.penalize(budget.key, budget.options, wait), signal)
        }
      }
      if (classification.kind === 'split') {
        if (jobs.length > 1) {
          const [left, right] = bisect(jobs)
          const a = await this.#attempt(left, connection)
          const b = await this.#attempt(right, connection)
          return { retry: [...a.retry, ...b.retry], auth: [...a.auth, ...b.auth] }
        }
        outcomes = [
          { kind: 'permanent', reason: classification.reason, status: response.status, code: 'LS_DEST_REJECTED' },
        ]
      } else {
        outcomes = classification.outcomes
      }
    } catch (err) {
      if (!(err instanceof DestinationError)) throw err
      metrics.requestDuration.observe(
        { destination: destination.name, status: 'network' },
        (performance.now() - started) / 1000,
      )
      outcomes = jobs.map(() =>
        err instanceof RetryableError
          ? { kind: 'retryable', reason: err.message, code: err.code }
          : { kind: 'permanent', reason: err.message, code: err.code },
      )
    }
    return this.#settle(jobs, outcomes, connection)
  }

  async #settle(jobs: DeliveryJob<Item>[], outcomes: ItemOutcome[], connection: Conn): Promise<AttemptResult<Item>> {
    const { destination, redis, metrics, signal } = this.#deps
    const result: AttemptResult<Item> = { retry: [], auth: [] }
    const delivered: DeliveryJob<Item>[] = []
    jobs.forEach((job, index) => {
      // A classifier that answers fewer outcomes than items is a bug; treating the gap as transient keeps the data.
      const outcome: ItemOutcome = outcomes[index] ?? { kind: 'retryable', reason: 'no outcome from classifier' }
      switch (outcome.kind) {
        case 'delivered':
          delivered.push(job)
          break
        case 'retryable':
          metrics.failed.inc({ destination: destination.name, class: 'retryable' })
          result.retry.push({
            job,
            reason: outcome.reason,
            code: outcome.code ?? 'LS_DEST_RETRYABLE',
            retryAfterMs: outcome.retryAfterMs,
          })
          break
        case 'auth':
          metrics.failed.inc({ destination: destination.name, class: 'auth' })
          result.auth.push({ job, reason: outcome.reason })
          break
        case 'permanent':
          metrics.failed.inc({ destination: destination.name, class: 'permanent' })
          job.resolve({
            kind: 'dead-letter',
            reason: outcome.reason,
            errorClass: 'permanent',
            code: outcome.code ?? 'LS_DEST_REJECTED',
          })
          break
      }
    })
    if (delivered.length > 0) {
      // Written after acceptance and before the offset can be committed: a crash in between re-sends, and the
      // destination's own messageId dedupe absorbs that one copy.
      await redis
        .run(() => this.#marks.mark(delivered.map((job) => job.messageId)), signal)
        .catch((err) => {
          if (!signal.aborted) throw err
        })
      metrics.delivered.inc({ destination: destination.name, connection: connection.name }, delivered.length)
      for (const job of delivered) job.resolve({ kind: 'delivered' })
    }
    return result
  }
}

function outcomesRetryAfter(classification: ReturnType<HttpDestination['classify']>): number | undefined {
  if (classification.kind !== 'items') return undefined
  let max: number | undefined
  for (const outcome of classification.outcomes) {
    if (outcome.kind === 'retryable' && outcome.retryAfterMs !== undefined) {
      max = Math.max(max ?? 0, outcome.retryAfterMs)
    }
  }
  return max
}
