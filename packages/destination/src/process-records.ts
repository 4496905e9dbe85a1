import { type DestinationId } from '@lookstream/events'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { TSchema } from 'typebox'
import { backoffDelay, type BackoffPolicy } from './backoff.ts'
import type { Dedupe } from './dedupe.ts'
import type { Deliverer, DeliveryJob, FinalOutcome } from './deliverer.ts'
import type { Connection, EncodedItem, HttpDestination } from './destination.ts'
import { PermanentError, type DestinationErrorCode } from './errors.ts'
import { failureHeaders, historyOf, type DeliveryHistory, type FailureInfo } from './failure-headers.ts'
import type { DestinationMetrics } from './metrics.ts'
import type { RedisGate } from './redis-gate.ts'
import { routeRecord, type InboundRecord } from './route-record.ts'
import type { ThrottledLog } from './throttled-log.ts'
import type { RowFailure } from '@lookstream/send-history'
import type { CanonicalMessage } from '@lookstream/events'
import { addSendCounts, type SendCountDelta } from './send-counts.ts'
import {
  ORDER_HEADER,
  formatTicket,
  localUserOf,
  orderUserOf,
  orderVerdict,
  parseTicket,
  type OrderTicket,
  type PredecessorFate,
  type UserOrder,
} from './user-order.ts'

/** How often delivered counts of a batch still being delivered are added to the send records. */
const PROGRESS_INTERVAL_MS = 1000

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
  /** Dead-lettering and parking, logged at most once per interval per connection and code. */
  events: ThrottledLog
  /**
   * Keeps the dead-lettered rows of each send for the send history page (packages/send-history); absent when
   * the service has no SEND_HISTORY_SECRET (the counts on the send record still hold them).
   */
  rowFailures?: (sendId: string, entries: readonly RowFailure[]) => Promise<unknown>
  retryTopic: string
  dlqTopic: string
  retry: RetryPolicy
  quickAttempts: number
  /** Writes records and resolves once the broker acknowledged all of them. */
  produce(records: OutboundRecord[]): Promise<void>
  signal: AbortSignal
  /** Per-user order (destinations with `orderedPerUser`): absent, every message is delivered as it comes. */
  order?: UserOrder
}

/** The outcome of a message parked behind an earlier message of its user (never sent meanwhile). */
const HELD: FinalOutcome = {
  kind: 'retry-later',
  reason: 'held behind an earlier message of the same user in the retry topic',
  code: 'LS_DEST_ORDER_HELD',
}

/**
 * Per-user order: the records of a batch that entered their user's turn (user, the ticket they came with, whether
 * they hold the turn now or wait for it), and whether the batch is over.
 */
interface Turn {
  /** The user within this process (`localUserOf`); Redis knows it only by `orderUserOf`. */
  user: string
  ticket: OrderTicket | undefined
  holds: boolean
  /** A retry-topic record not (or no longer) in its user's order: what follows it need not wait for it. */
  unordered: boolean
  /** Its user had no mark when it was sent. */
  clear: boolean
  /** The connection its job goes to once it may be sent. */
  connection: Connection
}

interface Turns {
  entries: Map<number, Turn>
  finished: boolean
}

interface Failure {
  kind: 'dead-letter'
  reason: string
  errorClass: 'permanent' | 'retryable' | 'auth'
  code: DestinationErrorCode
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
  const turns: Turns = { entries: new Map(), finished: false }
  try {
    return await processInOrder(records, deps, turns)
  } finally {
    // A batch that failed (or was cut by a shutdown) passes on the turns it still holds; one of its records still
    // waiting passes its turn on as soon as it gets it.
    turns.finished = true
    const fate = deps.signal.aborted ? 'abandoned' : 'finished'
    for (const turn of turns.entries.values()) if (turn.holds) deps.order?.leave(turn.user, fate)
  }
}

async function processInOrder<Conn extends Connection, Item>(
  records: readonly InboundRecord[],
  deps: ProcessorDeps<Conn, Item>,
  turns: Turns,
): Promise<boolean[]> {
  const { destination, connections, deliverer, dedupe, redis, metrics, signal } = deps
  const name = destination.name
  const maxItemBytes = destination.limits.maxItemBytes
  const startedAt = Date.now()
  type Settled = FinalOutcome | Failure | 'skip' | 'duplicate'
  // Plain arrays indexed like `records` instead of a promise per record: a batch holds thousands of them and
  // every promise (plus its resolver closures) is garbage the consuming side pays for per event.
  const settled: (Settled | undefined)[] = new Array<Settled | undefined>(records.length)
  const histories: (DeliveryHistory | undefined)[] = new Array<DeliveryHistory | undefined>(records.length)
  const sendIds: (string | undefined)[] = new Array<string | undefined>(records.length)
  const connectionNames: (string | undefined)[] = new Array<string | undefined>(records.length)
  // Who each message was for, as the send history keeps a dead-lettered row: a few strings per message in arrays,
  // not the decoded message, which can then die young once its item is built instead of surviving (and being
  // copied by) every collection until the whole batch is settled.
  const identities = new RowIdentities(records.length)
  const jobs: (DeliveryJob<Item> | undefined)[] = new Array<DeliveryJob<Item> | undefined>(records.length)
  const candidates: number[] = []
  const candidateIds: string[] = []
  const candidateConnections: Conn[] = []
  let skipped = 0
  // Settles record `index` once (the deliverer may resolve a job again after a shutdown gave it back); records
  // carrying the same messageId as an earlier one in this batch share its fate.
  let unsettled = 0
  let wake: (() => void) | undefined
  const followers = new Map<number, number[]>()
  const shareOf = (outcome: Settled): Settled =>
    typeof outcome === 'object' && outcome.kind === 'abandoned' ? outcome : 'duplicate'
  // Delivered counts reach the send record while the batch is still being delivered, at most once per
  // PROGRESS_INTERVAL_MS: a destination paced in items per minute (Heap) spends minutes on one batch, and its send
  // must show progress meanwhile. Dead-lettered and parked counts follow at the end, with their records.
  const progress = new Map<string, number>()
  let progressFlush: Promise<void> | undefined
  const flushProgress = (): Promise<void> => {
    if (progressFlush !== undefined) return progressFlush
    if (progress.size === 0) return Promise.resolve()
    const deltas = new Map<string, SendCountDelta>()
    for (const [sendId, delivered] of progress)
      deltas.set(sendId, { delivered, failed: 0, deadLettered: 0, alreadyDelivered: 0 })
    progress.clear()
    progressFlush = redis
      .run(() => addSendCounts(deps.redisClient, deltas), signal)
      .catch(() => {
        // Not written (a shutdown cut the wait for Redis): the counts go back, for the final write.
        for (const [sendId, delta] of deltas) progress.set(sendId, (progress.get(sendId) ?? 0) + delta.delivered)
      })
      .finally(() => {
        progressFlush = undefined
      })
    return progressFlush
  }
  const order = deps.order
  // Per-user order: completions of ticketed messages still being written (awaited before the batch ends).
  const orderWrites: Promise<void>[] = []
  const leaveTurn = (index: number, fate: PredecessorFate): void => {
    const turn = turns.entries.get(index)
    if (turn === undefined || !turn.holds) return
    turns.entries.delete(index)
    order!.leave(turn.user, fate)
  }
  const settle = (index: number, outcome: Settled): void => {
    if (settled[index] !== undefined) return
    settled[index] = outcome
    if (typeof outcome === 'object' && outcome.kind === 'delivered') {
      const sendId = sendIds[index]
      if (sendId !== undefined) progress.set(sendId, (progress.get(sendId) ?? 0) + 1)
    }
    const turn = turns.entries.get(index)
    if (turn?.holds === true && typeof outcome === 'object' && outcome.kind === 'retry-later') {
      // The user's next message in this batch is parked right behind this one (same produce, later record).
      if (order!.passWithin(turn.user, turns, turn.unordered ? 'finished' : 'parked')) turns.entries.delete(index)
    } else if (turn?.holds === true && typeof outcome === 'object') {
      // Delivered or dead-lettered: the user's next message may go once the mark knows this one is done.
      // Parked: its turn passes on after the retry record is written (below), so the next one lands behind it.
      if (outcome.kind === 'abandoned') leaveTurn(index, 'abandoned')
      else if (turn.ticket === undefined) leaveTurn(index, turn.clear ? 'clear' : 'finished')
      else {
        const ticket = turn.ticket
        turn.ticket = undefined
        orderWrites.push(
          redis
            .run(() => order!.complete(orderUserOf(records[index]!.key)!, ticket), signal)
            .then(
              () => leaveTurn(index, 'finished'),
              () => leaveTurn(index, 'abandoned'),
            ),
        )
      }
    }
    const same = followers.get(index)
    if (same !== undefined) for (const follower of same) settle(follower, shareOf(outcome))
    if (--unsettled === 0 && wake !== undefined) wake()
  }

  for (let index = 0; index < records.length; index++) {
    const record = records[index]!
    if (record.topic === deps.retryTopic) histories[index] = historyOf(record)
    const route = routeRecord(record, name as DestinationId)
    sendIds[index] = route.kind === 'deliver' ? route.sendId : record.headers['lookstream-send-id']
    if (route.kind === 'skip') {
      skipped++
      settled[index] = 'skip'
      continue
    }
    if (route.kind === 'invalid') {
      settled[index] = deadLetter(route.reason, 'LS_DEST_INVALID_MESSAGE')
      continue
    }
    connectionNames[index] = route.connection
    identities.keep(index, route.message)
    const connection = connections.get(route.connection)
    if (connection === undefined) {
      settled[index] = deadLetter(`unknown connection "${route.connection}"`, 'LS_DEST_UNKNOWN_CONNECTION')
      continue
    }
    let item: Item | PermanentError
    try {
      item = destination.toItem(route.message, connection)
    } catch (err) {
      // A mapping bug, not the message's fault: park it, so a fixed release delivers it from the retry topic.
      deps.log.error({ err, offset: record.offset, topic: record.topic }, 'toItem threw; parking the message')
      settled[index] = {
        kind: 'retry-later',
        reason: `mapping failed: ${(err as Error).message}`,
        code: 'LS_DEST_INTERNAL',
      }
      continue
    }
    if (item instanceof PermanentError) {
      settled[index] = deadLetter(item.message, item.code)
      continue
    }
    const json = destination.encode === undefined ? JSON.stringify(item) : destination.encode(item)
    const bytes = Buffer.byteLength(json)
    if (bytes > maxItemBytes) {
      settled[index] = deadLetter(
        `item is ${bytes} bytes, over the ${maxItemBytes}-byte limit per event`,
        'LS_DEST_ITEM_TOO_LARGE',
      )
      continue
    }
    candidates.push(index)
    candidateIds.push(route.message.messageId)
    candidateConnections.push(connection)
    const history = histories[index]
    jobs[index] = new BatchJob(
      route.message.messageId,
      { item, json, bytes },
      history === undefined ? 0 : history.attempts,
      index,
      settle,
    )
  }
  if (skipped > 0) metrics.skipped.inc({ destination: name }, skipped)

  const delivered = await redis.run(() => dedupe.wasDelivered(candidateIds), signal)
  const firstById = new Map<string, number>()
  const submitted: DeliveryJob<Item>[] = []
  let duplicates = 0
  // Records the dedupe store knew as delivered (not those sharing a message of this batch): counted into their
  // send's `already_delivered`, so that a send of rows delivered before shows as done.
  const knownDelivered = new Set<number>()
  let current: Conn | undefined
  // Per-user order: records that took their user's turn at once (their marks are read below).
  const firstTurns: number[] = []
  const doneEarly = new Set<number>()
  const hold = (index: number): void => {
    metrics.orderHeld.inc({ destination: name })
    settle(index, HELD)
  }
  // The turn of a record that waited behind an earlier message of its user in this process.
  const afterPredecessor = (index: number, connection: Conn, fate: PredecessorFate): void => {
    const turn = turns.entries.get(index)!
    turn.holds = true
    if (turns.finished) return leaveTurn(index, fate)
    if (fate === 'abandoned') return settle(index, { kind: 'abandoned' })
    const fromRetryTopic = histories[index] !== undefined
    if (fate === 'parked') {
      turn.unordered = fromRetryTopic && turn.ticket === undefined
      return hold(index)
    }
    if (fate === 'clear') {
      // Only a park of a message of this user from a canonical topic writes a mark; in this process those pass
      // through this turn, so none was written since (another topic's, on another replica, is not ordered with
      // this one by Kafka either).
      turn.clear = true
      turn.unordered = fromRetryTopic
      return deliverer.submit(connection, jobs[index]!)
    }
    redis
      .run(() => order!.lookup([orderUserOf(records[index]!.key)!]), signal)
      .then(
        ([mark]) => {
          turn.unordered = fromRetryTopic && (mark === undefined || turn.ticket?.epoch !== mark.epoch)
          turn.clear = mark === undefined
          if (orderVerdict(mark, turn.ticket, fromRetryTopic) === 'hold') hold(index)
          else deliverer.submit(connection, jobs[index]!)
        },
        () => settle(index, { kind: 'abandoned' }),
      )
  }
  for (let position = 0; position < candidates.length; position++) {
    const index = candidates[position]!
    if (delivered[position] === true) {
      duplicates++
      settled[index] = 'duplicate'
      knownDelivered.add(index)
      jobs[index] = undefined
      // A parked message already delivered (its offset was not committed): done, before its user's next is judged.
      if (order !== undefined && histories[index] !== undefined) doneEarly.add(index)
      continue
    }
    const messageId = candidateIds[position]!
    const earlier = firstById.get(messageId)
    if (earlier !== undefined) {
      // The same message twice in one batch (a replay racing the original): it shares the first one's fate.
      duplicates++
      jobs[index] = undefined
      unsettled++
      const first = settled[earlier]
      if (first !== undefined) {
        // Already settled: a shutdown gives jobs back synchronously, within an earlier submitAll above.
        settle(index, shareOf(first))
        continue
      }
      const same = followers.get(earlier)
      if (same === undefined) followers.set(earlier, [index])
      else same.push(index)
      continue
    }
    firstById.set(messageId, index)
    unsettled++
    // Jobs go to the deliverer in runs per connection, so its lane queues them all before it packs batches.
    const connection = candidateConnections[position]!
    const user = order === undefined ? undefined : localUserOf(records[index]!.key)
    if (user !== undefined) {
      // One message per user in delivery at a time: a later one waits here, outside the deliverer, so neither an
      // in-process retry nor a concurrent request can put it ahead of the earlier one.
      const ticket = histories[index] === undefined ? undefined : parseTicket(records[index]!.headers[ORDER_HEADER])
      const turn: Turn = { user, ticket, holds: false, unordered: false, clear: false, connection }
      turns.entries.set(index, turn)
      if (order!.tryEnter(user)) {
        turn.holds = true
        firstTurns.push(index)
      } else {
        order!.wait(user, turns, (fate) => afterPredecessor(index, connection, fate))
      }
      continue
    }
    if (current !== undefined && current !== connection) {
      deliverer.submitAll(current, submitted)
      submitted.length = 0
    }
    current = connection
    submitted.push(jobs[index]!)
  }
  if (duplicates > 0) metrics.duplicates.inc({ destination: name }, duplicates)
  if (current !== undefined) deliverer.submitAll(current, submitted)
  const early = [...doneEarly].flatMap((index) => {
    const user = orderUserOf(records[index]!.key)
    const ticket = parseTicket(records[index]!.headers[ORDER_HEADER])
    return user === undefined || ticket === undefined ? [] : [{ user, ticket }]
  })
  if (early.length > 0) {
    await redis.run(() => Promise.all(early.map((entry) => order!.complete(entry.user, entry.ticket))), signal)
  }
  if (firstTurns.length > 0) {
    // The users' marks, read after taking their turns: a mark written after this read is for a later message.
    // Mostly no user of the destination is parked at all: one probe says so, and no user is hashed nor sent.
    const marks = await redis.run(
      async () =>
        (await order!.anyParked())
          ? order!.lookup(firstTurns.map((index) => orderUserOf(records[index]!.key)!))
          : new Array<undefined>(firstTurns.length),
      signal,
    )
    submitted.length = 0
    current = undefined
    firstTurns.forEach((index, position) => {
      const turn = turns.entries.get(index)!
      const mark = marks[position]
      const fromRetryTopic = histories[index] !== undefined
      turn.unordered = fromRetryTopic && (mark === undefined || turn.ticket?.epoch !== mark.epoch)
      turn.clear = mark === undefined
      if (orderVerdict(mark, turn.ticket, fromRetryTopic) === 'hold') return hold(index)
      const connection = turn.connection as Conn
      if (current !== undefined && current !== connection) {
        deliverer.submitAll(current, submitted)
        submitted.length = 0
      }
      current = connection
      submitted.push(jobs[index]!)
    })
    if (current !== undefined) deliverer.submitAll(current, submitted)
  }
  // Whatever is still unsettled settles in a later tick (a shutdown settles jobs synchronously, above).
  if (unsettled > 0) {
    const ticker = setInterval(() => void flushProgress(), PROGRESS_INTERVAL_MS)
    try {
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    } finally {
      clearInterval(ticker)
    }
  }

  const now = Date.now()
  const out: OutboundRecord[] = []
  const done: boolean[] = new Array<boolean>(records.length)
  const counts = new Map<string, SendCountDelta>()
  const failures = new Map<string, RowFailure[]>()
  let lastSendId: string | undefined
  let lastDelta: SendCountDelta | undefined
  const count = (index: number, field: keyof SendCountDelta) => {
    const sendId = sendIds[index]
    if (sendId === undefined) return
    if (sendId !== lastSendId) {
      lastSendId = sendId
      lastDelta = counts.get(sendId)
      if (lastDelta === undefined) {
        lastDelta = { delivered: 0, failed: 0, deadLettered: 0, alreadyDelivered: 0 }
        counts.set(sendId, lastDelta)
      }
    }
    lastDelta![field]++
  }

  // Per-user order: parked records of ordered users (their tickets go in their headers) and retry-topic records
  // finished here whose tickets the marks must learn about.
  const parks: { index: number; user: string; ticket: OrderTicket | undefined; position: number }[] = []
  const finishing: { index: number; user: string; ticket: OrderTicket }[] = []
  const orderOf = (index: number): { user: string; ticket: OrderTicket | undefined } | undefined => {
    if (order === undefined) return undefined
    const user = orderUserOf(records[index]!.key)
    if (user === undefined) return undefined
    const turn = turns.entries.get(index)
    if (turn !== undefined) return { user, ticket: turn.ticket }
    const ticket = histories[index] === undefined ? undefined : parseTicket(records[index]!.headers[ORDER_HEADER])
    return { user, ticket }
  }
  const finish = (index: number): void => {
    const of = orderOf(index)
    if (of?.ticket !== undefined) finishing.push({ index, user: of.user, ticket: of.ticket })
  }

  for (let index = 0; index < records.length; index++) {
    const outcome = settled[index]!
    if (outcome === 'skip' || outcome === 'duplicate') {
      if (outcome === 'duplicate' && !doneEarly.has(index)) finish(index)
      if (knownDelivered.has(index)) count(index, 'alreadyDelivered')
      done[index] = true
      continue
    }
    if (outcome.kind === 'delivered') {
      // Counted as it settled (`progress`).
      done[index] = true
      continue
    }
    if (outcome.kind === 'abandoned') {
      done[index] = false
      continue
    }
    const record = records[index]!
    const history = histories[index] ?? {
      originalTopic: record.topic,
      originalPartition: record.partition,
      originalOffset: record.offset,
      attempts: 0,
      firstAttemptAt: undefined,
    }
    const firstAttemptAt = history.firstAttemptAt ?? startedAt
    const attempts = jobs[index]?.attempts ?? history.attempts
    done[index] = true
    if (outcome.kind === 'retry-later') {
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
        report(index, 'dead-letter', 'LS_DEST_RETRY_WINDOW_EXCEEDED', outcome.reason)
        remember(index, 'LS_DEST_RETRY_WINDOW_EXCEEDED', outcome.reason, now)
        finish(index)
      } else {
        const cycle = Math.max(1, Math.ceil(attempts / Math.max(1, deps.quickAttempts)))
        const retryAt = now + backoffDelay(cycle, deps.retry.delay)
        // A message from a canonical topic joins its user's mark; a retry-topic one keeps its ticket, if any.
        const of = orderOf(index)
        if (of !== undefined && (histories[index] === undefined || of.ticket !== undefined)) {
          parks.push({ index, user: of.user, ticket: of.ticket, position: out.length })
        }
        out.push({
          topic: deps.retryTopic,
          key: record.key,
          value: record.value,
          headers: failureHeaders(record, history, {
            error: outcome.reason,
            errorClass: 'retryable',
            code: outcome.code,
            attempts,
            firstAttemptAt,
            lastAttemptAt: now,
            retryAt,
          }),
        })
        if (history.attempts === 0) count(index, 'failed')
        report(index, 'park', outcome.code, outcome.reason)
      }
      continue
    }
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
    report(index, 'dead-letter', outcome.code, outcome.reason)
    remember(index, outcome.code, outcome.reason, now)
    if (!turns.entries.has(index)) finish(index)
  }

  if (order !== undefined) {
    if (parks.length > 0) {
      const tickets = await redis.run(() => order.park(parks), signal)
      parks.forEach((park, position) => {
        park.ticket = tickets[position]
        if (park.ticket !== undefined) out[park.position]!.headers[ORDER_HEADER] = formatTicket(park.ticket)
      })
    }
    if (finishing.length > 0) {
      await redis.run(() => Promise.all(finishing.map((entry) => order.complete(entry.user, entry.ticket))), signal)
    }
    await Promise.all(orderWrites)
  }
  if (out.length > 0) await deps.produce(out)
  // The retry records are written: a user's next message, waiting here, goes behind its parked one.
  // (Parked without a ticket, the user was released: what follows it need not wait.)
  for (const park of parks) leaveTurn(park.index, park.ticket === undefined ? 'finished' : 'parked')
  for (const entry of finishing) leaveTurn(entry.index, 'finished')
  if (deps.rowFailures !== undefined && failures.size > 0) {
    const rowFailures = deps.rowFailures
    await redis
      .run(() => Promise.all([...failures].map(([sendId, entries]) => rowFailures(sendId, entries))), signal)
      .catch((err: unknown) => {
        // The send history is reporting, like the counts: a shutdown must not hold back committing for it.
        if (!signal.aborted) throw err
      })
  }
  await flushProgress()
  for (const [sendId, delivered] of progress) {
    const delta = counts.get(sendId) ?? { delivered: 0, failed: 0, deadLettered: 0, alreadyDelivered: 0 }
    delta.delivered += delivered
    counts.set(sendId, delta)
  }
  progress.clear()
  await redis
    .run(() => addSendCounts(deps.redisClient, counts), signal)
    .catch((err: unknown) => {
      // Counts are progress reporting: a shutdown must not hold back committing delivered work for them.
      if (!signal.aborted) throw err
    })
  return done

  // The send history's row of a dead-lettered record: which row of which send, why, and who it was for.
  function remember(index: number, code: string, reason: string, at: number): void {
    const sendId = sendIds[index]
    if (sendId === undefined || deps.rowFailures === undefined) return
    const identity: Record<string, string> = {}
    const userId = identities.userIds[index]
    const anonymousId = identities.anonymousIds[index]
    const groupId = identities.groupIds[index]
    if (userId !== undefined) identity.userId = userId
    if (anonymousId !== undefined) identity.anonymousId = anonymousId
    if (groupId !== undefined) identity.groupId = groupId
    const entry: RowFailure = {
      destination: name,
      row: identities.rows[index] ?? 0,
      messageId: identities.messageIds[index],
      stage: 'dead-lettered',
      code,
      reason,
      identity,
      at: new Date(at),
    }
    const list = failures.get(sendId)
    if (list === undefined) failures.set(sendId, [entry])
    else list.push(entry)
  }

  // Rate-limited per (what, connection, code): the reason is the runtime's or the vendor's words, never row values.
  function report(index: number, what: 'park' | 'dead-letter', code: string, reason: string): void {
    const connection = connectionNames[index]
    deps.events.warn(
      `${what}\u0000${connection ?? ''}\u0000${code}`,
      { destination: name, connection, sendId: sendIds[index], code, reason },
      what === 'park' ? 'parked in the retry topic' : 'dead-lettered',
    )
  }

  function dlqRecord(record: InboundRecord, history: DeliveryHistory, failure: FailureInfo): OutboundRecord {
    return {
      topic: deps.dlqTopic,
      key: record.key,
      value: record.value,
      headers: failureHeaders(record, history, failure),
    }
  }
}

/** A job of one batch: it settles its record through the batch's own function (no closure per message). */
class BatchJob<Item> implements DeliveryJob<Item> {
  readonly messageId: string
  readonly encoded: EncodedItem<Item>
  attempts: number
  readonly #index: number
  readonly #settle: (index: number, outcome: FinalOutcome) => void

  constructor(
    messageId: string,
    encoded: EncodedItem<Item>,
    attempts: number,
    index: number,
    settle: (index: number, outcome: FinalOutcome) => void,
  ) {
    this.messageId = messageId
    this.encoded = encoded
    this.attempts = attempts
    this.#index = index
    this.#settle = settle
  }

  resolve(outcome: FinalOutcome): void {
    this.#settle(this.#index, outcome)
  }
}

/** What the send history keeps of a dead-lettered message, per record of a batch: its row and who it was for. */
class RowIdentities {
  readonly rows: (number | undefined)[]
  readonly messageIds: (string | undefined)[]
  readonly userIds: (string | undefined)[]
  readonly anonymousIds: (string | undefined)[]
  readonly groupIds: (string | undefined)[]

  constructor(length: number) {
    this.rows = new Array<number | undefined>(length)
    this.messageIds = new Array<string | undefined>(length)
    this.userIds = new Array<string | undefined>(length)
    this.anonymousIds = new Array<string | undefined>(length)
    this.groupIds = new Array<string | undefined>(length)
  }

  keep(index: number, message: CanonicalMessage): void {
    this.rows[index] = message.context?.lookstream?.row
    this.messageIds[index] = message.messageId
    this.userIds[index] = message.userId
    this.anonymousIds[index] = message.anonymousId
    if (message.type === 'group') this.groupIds[index] = message.groupId
  }
}

function deadLetter(reason: string, code: DestinationErrorCode): Failure {
  return { kind: 'dead-letter', reason, errorClass: 'permanent', code }
}
