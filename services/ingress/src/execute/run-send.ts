import { setImmediate as yieldToLoop } from 'node:timers/promises'
import {
  headersFor,
  keyFor,
  MAX_MESSAGE_BYTES,
  MAX_REJECT_REASONS,
  messageIdHasher,
  topicFor,
  validateBuiltMessage,
  type CanonicalMessage,
  type MessageIdHasher,
  type RejectReason,
} from '@lookstream/events'
import { type Action, type MappedMessage, type RowMapper, type SendContext } from '../actions/action.ts'
import { type IngressMetrics } from '../ingress-metrics.ts'
import {
  JsonDetailError,
  JsonDetailScanner,
  readJsonDetail,
  type JsonDetailFields,
} from '../looker/json-detail-reader.ts'
import { fingerprintOf, OccurrenceCounter } from './occurrence-counter.ts'

/** The part of @lookstream/kafka's producer a send needs: send() resolves once Kafka acknowledged. */
export interface MessageProducer {
  send(record: {
    topic: string
    key: string
    value: string | Buffer
    headers: Record<string, string>
  }): Promise<unknown>
  isWritable(): boolean
  whenWritable(): Promise<void>
}

export interface SendCounts {
  received: number
  accepted: number
  rejected: number
}

export interface SendInput {
  sendId: string
  action: Action
  context: SendContext
  /** Scheduled plan id, else webhook id, else the download URL: what makes a re-delivery recognisable. */
  sendKey: string
  receivedAt: Date
  /** Stands in for ran_at in message ids when the result has none (the webhook id), so runs stay distinct. */
  ranAtFallback?: string | undefined
  openSource: () => Promise<AsyncIterable<Uint8Array>>
  maxRowBytes: number
  maxFieldBytes: number
  /** Deepest nesting of a row; default DEFAULT_MAX_DEPTH of the reader. */
  maxDepth?: number
  /** Most fields a result may list; default DEFAULT_MAX_FIELDS of the reader. */
  maxFields?: number
  /** Largest result (bytes read from the download or the pushed attachment); unlimited when not given. */
  maxResultBytes?: number
  /** Aborts the send when it fires: reading stops and the rows read so far are finished. */
  deadline?: { signal: AbortSignal; ms: number }
  /** Told about errors thrown by a mapper or prepare (bugs); never given row values. */
  onInternalError?: (err: unknown, where: string) => void
  /** Distinct rows whose repeats are counted exactly (see occurrence-counter.ts); default 1,000,000. */
  maxTrackedDistinctRows?: number
  onProgress?: (counts: SendCounts, reasons: readonly RejectReason[]) => void
  progressEveryMs?: number
  /** Each rejected row, with its cells when they were read (the send history keeps its identity). */
  onRejected?: (row: number, reason: string, code: string, cells: unknown) => void
  /** The Look's fields, once, before any row. */
  onFields?: (fields: JsonDetailFields) => void
  /** True to leave a mapped row out of the send (unchanged since the schedule's last run); it is not counted. */
  skipRow?: (row: number, messages: readonly MappedMessage[]) => boolean
  /** Each row whose messages Kafka all acknowledged. */
  onAccepted?: (row: number) => void
}

export interface SendOutcome extends SendCounts {
  success: boolean
  /** Set when the send stopped early: the stream, the mapping setup or Kafka failed. */
  failure?: string
  reasons: RejectReason[]
  ranAt: string | undefined
  /** What of the Look the action deliberately does not send (e.g. mParticle device_info it has no key for). */
  notes?: string[]
}

export class SendFailure extends Error {}

// Synchronous work between two yields to the event loop stays under this (the loop's other sends, keep-alives and
// /status wait meanwhile); the clock is read after every row (~40 ns), since one row of a wide Look can cost
// milliseconds.
const SLICE_MS = 20

const ROW_REASON_CLASSES: [RegExp, string][] = [
  [/row limit/, 'row_too_large'],
  [/field limit/, 'field_too_large'],
  [/has no .*value|is empty|no mParticle identity/, 'no_identity'],
  [/holds a/, 'bad_identity'],
  [/over the \d+-byte limit/, 'message_too_large'],
  [/^\//, 'invalid_message'],
]

export function reasonClass(reason: string): string {
  return ROW_REASON_CLASSES.find(([pattern]) => pattern.test(reason))?.[1] ?? 'other'
}

function checkFieldSizes(row: unknown, maxFieldBytes: number): string | undefined {
  if (row === null || typeof row !== 'object') return undefined
  const cells = row as Record<string, unknown>
  for (const name in cells) {
    const cell = cells[name]
    const value = cell !== null && typeof cell === 'object' && 'value' in cell ? cell.value : cell
    // UTF-8 is at most 3 bytes per UTF-16 unit: only long strings need measuring.
    if (typeof value === 'string' && value.length * 3 > maxFieldBytes) {
      const bytes = Buffer.byteLength(value)
      if (bytes > maxFieldBytes) return `field ${name} is ${bytes} bytes, over the ${maxFieldBytes}-byte field limit`
    } else if (value !== null && typeof value === 'object') {
      const bytes = Buffer.byteLength(JSON.stringify(value))
      if (bytes > maxFieldBytes) return `field ${name} is ${bytes} bytes, over the ${maxFieldBytes}-byte field limit`
    }
  }
  return undefined
}

/**
 * The chunks of `source`, until they total more than `max` bytes: the next pull then throws `over()`. The batch loop
 * checks the byte count only when a chunk completes an item; the chunks of one endless row (or of an endless root
 * value that is skipped) complete none, so without this the cap would never be checked.
 */
async function* capped(source: AsyncIterable<Uint8Array>, max: number, over: () => Error): AsyncGenerator<Uint8Array> {
  let bytes = 0
  for await (const chunk of source) {
    if (bytes > max) throw over()
    bytes += chunk.byteLength
    yield chunk
  }
}

// Looker writes ran_at as an ISO 8601 date-time with its offset ("2017-07-28T02:25:19+00:00"). Only that form is
// read (a time without an offset as UTC); Date.parse alone would read "garbage 12" as 2001-12-01 and a time
// without an offset in the server's own zone.
// A space may stand before the offset, and UTC or GMT for Z (as SQL and Ruby write times).
const RAN_AT =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)? ?(?:([Zz]|UTC|GMT)|([+-])(\d{2})(?::?(\d{2}))?)?$/
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** Milliseconds since the epoch of a ran_at, or undefined when it is not such a date-time. */
export function parseRanAt(text: string): number | undefined {
  const m = RAN_AT.exec(text)
  if (m === null) return undefined
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '00'].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const offsetHours = Number(m[10] ?? 0)
  const offsetMinutes = Number(m[11] ?? 0)
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const days = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]
  if (days === undefined || day < 1 || day > days || hour > 23 || minute > 59 || second > 59) return undefined
  if (offsetHours > 23 || offsetMinutes > 59) return undefined
  const milliseconds = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3))
  const zone = m[9] === undefined ? 'Z' : `${m[9]}${m[10]}:${m[11] ?? '00'}`
  const pad = (n: number, width = 2) => String(n).padStart(width, '0')
  return Date.parse(
    `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${pad(second)}.${pad(milliseconds, 3)}${zone}`,
  )
}

/**
 * Every message's timestamp: the result's ran_at, else the time the send was received. A ran_at that is not such a
 * date-time is not guessed at: the receive time stands in and the verdict says so (a note), so a Looker that wrote
 * another form still sends.
 */
function timestampFrom(ranAt: string | undefined, fallback: Date): { timestamp: string; note?: string } {
  if (ranAt === undefined) return { timestamp: fallback.toISOString() }
  const parsed = parseRanAt(ranAt)
  if (parsed !== undefined) return { timestamp: new Date(parsed).toISOString() }
  return {
    timestamp: fallback.toISOString(),
    note: "the result's ran_at is not an ISO 8601 date-time (Looker writes 2017-07-28T02:25:19+00:00): every message carries the time lookstream received the send instead.",
  }
}

/**
 * Streams one Looker result through an action's mapper into Kafka. Every row ends up accepted (all its
 * messages acknowledged by Kafka), rejected (with its row number and reason), or — when the send fails
 * midway — neither, and the outcome only counts as accepted what Kafka acknowledged.
 */
export async function runSend(
  input: SendInput,
  producer: MessageProducer,
  metrics: IngressMetrics,
): Promise<SendOutcome> {
  const { action, context, sendId } = input
  const destination = action.destination
  const counts: SendCounts = { received: 0, accepted: 0, rejected: 0 }
  const reasons: RejectReason[] = []
  const counter = new OccurrenceCounter({ maxDistinct: input.maxTrackedDistinctRows })
  const limits = {
    maxRowBytes: input.maxRowBytes,
    ...(input.maxDepth === undefined ? {} : { maxDepth: input.maxDepth }),
    ...(input.maxFields === undefined ? {} : { maxFields: input.maxFields }),
  }
  const scanner = new JsonDetailScanner(limits)
  const maxResultBytes = input.maxResultBytes ?? Number.POSITIVE_INFINITY
  const deadline = input.deadline
  let mapRow: RowMapper | undefined
  let idOf: MessageIdHasher | undefined
  let ranAt: string | undefined
  let timestamp = input.receivedAt.toISOString()
  let failure: string | undefined
  let notes: string[] | undefined
  let produceError: unknown
  let outstanding = 0
  let opened = false
  let wakeDrained: (() => void) | undefined
  let lastProgress = Date.now()
  let bytesCounted = 0
  const progressEveryMs = input.progressEveryMs ?? 1000

  const reject = (row: number, reason: string, cells?: unknown) => {
    counts.rejected++
    const code = reasonClass(reason)
    input.onRejected?.(row, reason, code, cells)
    if (reasons.length < MAX_REJECT_REASONS) reasons.push({ row, reason: reason.slice(0, 1024) })
    metrics.rows.inc({ action: action.name, outcome: 'rejected', reason: code })
  }

  const settle = () => {
    outstanding--
    if (outstanding === 0) {
      flushAccepted()
      wakeDrained?.()
    }
  }

  // All messages of a send share their integrations, so their headers depend only on the type.
  const headersByType = new Map<string, Record<string, string>>()
  const contextHead = `,"context":{"lookstream":{"sendId":${JSON.stringify(sendId)},"row":`
  const contextTail = `,"action":${JSON.stringify(action.name)}}}}`
  let acceptedNotCounted = 0
  const flushAccepted = () => {
    if (acceptedNotCounted === 0) return
    metrics.rows.inc({ action: action.name, outcome: 'accepted', reason: '' }, acceptedNotCounted)
    acceptedNotCounted = 0
  }

  const produce = (row: number, mapped: MappedMessage[]) => {
    const prepared: { topic: string; key: string; value: string | Buffer; headers: Record<string, string> }[] = []
    for (const core of mapped) {
      const identity = core.type === 'group' ? core.groupId : (core.userId ?? core.anonymousId)
      if (identity === undefined) return reject(row, 'message has no identity')
      const content = JSON.stringify(core)
      const first = idOf!(identity, content, 0)
      const [hi, lo] = fingerprintOf(first)
      const occurrence = counter.next(hi, lo, row)
      const messageId = occurrence === 0 ? first : idOf!(identity, content, occurrence)
      const messageTimestamp = core.timestamp ?? timestamp
      const message = {
        ...core,
        messageId,
        timestamp: messageTimestamp,
        context: { ...core.context, lookstream: { sendId, row, action: action.name } },
      }
      // Most messages have no context of their own: append to the content's JSON instead of serializing again.
      const value =
        core.context === undefined && core.timestamp === undefined
          ? `${content.slice(0, -1)},"messageId":"${messageId}","timestamp":${JSON.stringify(messageTimestamp)}${contextHead}${row}${contextTail}`
          : JSON.stringify(message)
      const bytes = Buffer.byteLength(value)
      // An oversized message (a wide Look's row) is rejected before the schema walks its thousands of traits.
      if (bytes > MAX_MESSAGE_BYTES) {
        return reject(row, `/: message is ${bytes} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit`)
      }
      const checked = validateBuiltMessage(message, bytes)
      if (!checked.ok) return reject(row, checked.errors.join('; '))
      const canonical: CanonicalMessage = checked.message
      let headers = headersByType.get(canonical.type)
      if (headers === undefined) {
        // Frozen: the producer and kafkajs then measure and encode these headers once per send, not per record.
        headers = Object.freeze(headersFor(canonical, { producer: 'ingress', sendId }))
        headersByType.set(canonical.type, headers)
      }
      prepared.push({ topic: topicFor(canonical), key: keyFor(canonical), value, headers })
    }
    let left = prepared.length
    let failed = false
    for (const record of prepared) {
      outstanding++
      const started = performance.now()
      producer.send(record).then(
        () => {
          metrics.produceLatency.observe((performance.now() - started) / 1000)
          if (--left === 0 && !failed) {
            counts.accepted++
            input.onAccepted?.(row)
            acceptedNotCounted++
          }
          settle()
        },
        (err: unknown) => {
          if (!failed) metrics.rows.inc({ action: action.name, outcome: 'failed', reason: 'kafka' })
          failed = true
          produceError ??= err
          settle()
        },
      )
    }
  }

  // Metrics are updated once per chunk rather than per row (label lookups are not free at 100k rows/s).
  const countBytes = () => {
    metrics.bytesStreamed.inc(scanner.bytesRead - bytesCounted)
    bytesCounted = scanner.bytesRead
    flushAccepted()
  }

  const deadlineFailure = () =>
    `the send passed its ${deadline!.ms} ms deadline (SEND_DEADLINE_MS) after ${counts.received} rows ` +
    `(${scanner.bytesRead} bytes read); the rest of the result was not read`
  const overResultBytes = () =>
    new SendFailure(
      `the result is over the ${maxResultBytes}-byte limit (MAX_RESULT_BYTES); ` +
        `reading stopped after ${scanner.bytesRead} bytes and row ${scanner.rowsSeen}`,
    )
  let sliceStarted = performance.now()

  try {
    const source = await input.openSource()
    opened = true
    reading: for await (const batch of readJsonDetail(
      capped(source, maxResultBytes, overResultBytes),
      limits,
      scanner,
    )) {
      if (scanner.bytesRead > maxResultBytes) throw overResultBytes()
      if (deadline?.signal.aborted) throw new SendFailure(deadlineFailure())
      for (const item of batch) {
        if (item.kind === 'header') {
          ranAt = item.ranAt
          const stamped = timestampFrom(ranAt, input.receivedAt)
          timestamp = stamped.timestamp
          input.onFields?.(item.fields)
          let prepared: ReturnType<Action['prepare']>
          try {
            prepared = action.prepare(item.fields, context)
          } catch (err) {
            input.onInternalError?.(err, 'prepare')
            throw new SendFailure('the fields of the result could not be prepared for mapping (internal error)')
          }
          if (!prepared.ok) throw new SendFailure(prepared.reason)
          mapRow = prepared.mapRow
          if (prepared.notes !== undefined && prepared.notes.length > 0) notes = prepared.notes
          if (stamped.note !== undefined) notes = [...(notes ?? []), stamped.note]
          idOf = messageIdHasher({
            destination,
            connection: context.connection,
            sendKey: input.sendKey,
            ranAt: ranAt ?? input.ranAtFallback ?? '',
          })
          continue
        }
        counts.received++
        if (item.kind === 'rejected') {
          reject(item.row, item.reason)
          continue
        }
        const tooBig = checkFieldSizes(item.value, input.maxFieldBytes)
        if (tooBig !== undefined) {
          reject(item.row, tooBig, item.value)
          continue
        }
        let result: ReturnType<RowMapper>
        try {
          result = mapRow!(item.value)
        } catch (err) {
          input.onInternalError?.(err, `row ${item.row}`)
          result = { ok: false, reason: 'row could not be mapped (internal error)' }
        }
        if (!result.ok) reject(item.row, result.reason, item.value)
        else if (result.messages.length === 0) reject(item.row, 'row maps to no message', item.value)
        else if (input.skipRow?.(item.row, result.messages) !== true) produce(item.row, result.messages)
        if (produceError !== undefined) break reading
        if (!producer.isWritable()) {
          await producer.whenWritable()
          sliceStarted = performance.now()
        } else if (performance.now() - sliceStarted > SLICE_MS) {
          await yieldToLoop()
          sliceStarted = performance.now()
        }
      }
      countBytes()
      if (produceError !== undefined) break
      if (input.onProgress && Date.now() - lastProgress >= progressEveryMs) {
        lastProgress = Date.now()
        input.onProgress(counts, reasons)
      }
    }
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err)
    failure =
      err instanceof JsonDetailError || err instanceof SendFailure
        ? text
        : deadline?.signal.aborted
          ? deadlineFailure()
          : !opened
            ? text
            : `the download from Looker broke off after ${counts.received} rows (${scanner.bytesRead} bytes read): ${text}`
  }
  countBytes()
  if (outstanding > 0) await new Promise<void>((resolve) => (wakeDrained = resolve))
  countBytes()
  if (produceError !== undefined) {
    const cause = produceError instanceof Error ? produceError.message : JSON.stringify(produceError)
    failure = `Kafka did not acknowledge a message (${cause}); the send stopped after row ${counts.received}`
  }
  return {
    ...counts,
    success: failure === undefined,
    ...(failure === undefined ? {} : { failure }),
    reasons,
    ranAt,
    ...(notes === undefined ? {} : { notes }),
  }
}
