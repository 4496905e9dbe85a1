import { HEADERS } from '@lookstream/events'
import { RUNTIME_HEADERS } from '../failure-headers.ts'

export interface DlqFilter {
  /** An error code (LS_DEST_…) or a case-insensitive fragment of the error message. */
  reason?: string
  /** Dead-lettered (last attempt) at or after / before these epoch milliseconds. */
  since?: number
  until?: number
  /** The Looker send (lookstream-send-id header, else context.lookstream.sendId). */
  sendId?: string
  /** Any of these messageIds. */
  messageIds?: ReadonlySet<string>
}

export interface DlqEntry {
  partition: number
  offset: string
  messageId: string | undefined
  sendId: string | undefined
  code: string
  errorClass: string
  error: string
  attempts: number
  originalTopic: string
  firstAttemptAt: string
  lastAttemptAt: string
  /** When it was dead-lettered (epoch ms): the last attempt, else the DLQ record's timestamp. */
  deadLetteredAt: number
}

const DURATION = /^(\d+(?:\.\d+)?)(s|m|h|d)$/
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** An ISO 8601 time, or a duration back from now such as 30m, 2h, 7d. */
export function parseTime(value: string, now: number = Date.now()): number {
  const duration = DURATION.exec(value.trim())
  if (duration) return now - Number(duration[1]) * UNIT_MS[duration[2]!]!
  const at = Date.parse(value)
  if (Number.isNaN(at)) throw new Error(`not a time: "${value}" (use ISO 8601 or a duration such as 2h)`)
  return at
}

export function toEntry(record: {
  partition: number
  offset: string
  value: Buffer | null
  headers: Record<string, string | undefined>
  timestamp?: string
}): DlqEntry {
  const h = record.headers
  let messageId: string | undefined
  let sendId = h[HEADERS.sendId]
  try {
    const parsed = JSON.parse(record.value?.toString('utf8') ?? '') as {
      messageId?: unknown
      context?: { lookstream?: { sendId?: unknown } }
    }
    if (typeof parsed.messageId === 'string') messageId = parsed.messageId
    const fromContext = parsed.context?.lookstream?.sendId
    if (sendId === undefined && typeof fromContext === 'string') sendId = fromContext
  } catch {
    // Invalid messages are dead-lettered as they came: there may be no messageId to show.
  }
  const lastAttemptAt = h[HEADERS.lastAttemptAt] ?? ''
  const lastAttempt = Date.parse(lastAttemptAt)
  return {
    partition: record.partition,
    offset: record.offset,
    messageId,
    sendId,
    code: h[RUNTIME_HEADERS.errorCode] ?? 'unknown',
    errorClass: h[HEADERS.errorClass] ?? 'unknown',
    error: h[HEADERS.error] ?? '',
    attempts: Number(h[HEADERS.attempts] ?? 0),
    originalTopic: h[HEADERS.originalTopic] ?? '',
    firstAttemptAt: h[HEADERS.firstAttemptAt] ?? '',
    lastAttemptAt,
    deadLetteredAt: Number.isNaN(lastAttempt) ? Number(record.timestamp ?? Number.NaN) : lastAttempt,
  }
}

export function matches(entry: DlqEntry, filter: DlqFilter): boolean {
  if (filter.reason !== undefined) {
    const wanted = filter.reason.toLowerCase()
    if (entry.code.toLowerCase() !== wanted && !entry.error.toLowerCase().includes(wanted)) return false
  }
  if (filter.sendId !== undefined && entry.sendId !== filter.sendId) return false
  if (filter.messageIds !== undefined && (entry.messageId === undefined || !filter.messageIds.has(entry.messageId))) {
    return false
  }
  const at = entry.deadLetteredAt
  if (filter.since !== undefined && !(at >= filter.since)) return false
  if (filter.until !== undefined && !(at < filter.until)) return false
  return true
}
