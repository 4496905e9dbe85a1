import { Compile } from 'typebox/compile'
import { Format } from 'typebox/format'
import { GroupMessage, IdentifyMessage, TrackMessage, type CanonicalMessage } from './message-schema.ts'
import { SendEvent } from './send-event.ts'
import { formatValidationErrors } from './validation-errors.ts'

/** Largest serialized (UTF-8 JSON) canonical message or send event accepted on the topics: 64 KiB. */
export const MAX_MESSAGE_BYTES = 64 * 1024

export type ValidationResult<T> = { ok: true; message: T } | { ok: false; errors: string[] }

/** The same answers as `check`, remembering the last value: consecutive messages of a send share its timestamp. */
function rememberingLast(check: (value: string) => boolean): (value: string) => boolean {
  let last: string | undefined
  let lastResult = false
  return (value) => {
    if (value !== last) {
      lastResult = check(value)
      last = value
    }
    return lastResult
  }
}

// Compiled once at load: destination services validate every message that another producer wrote. Compiled code
// binds the format checks registered at compile time, so the remembering date-time check is registered just for
// these compilations and the registry is left as it was.
const dateTime = Format.Get('date-time')
if (dateTime !== undefined) Format.Set('date-time', rememberingLast(dateTime))
const byType = {
  identify: Compile(IdentifyMessage),
  track: Compile(TrackMessage),
  group: Compile(GroupMessage),
}
const sendEvent = Compile(SendEvent)
if (dateTime !== undefined) Format.Set('date-time', dateTime)

interface Checker<T> {
  Check(value: unknown): value is T
  Errors(value: unknown): Parameters<typeof formatValidationErrors>[0]
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function tooLarge(bytes: number): string {
  return `/: message is ${bytes} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit`
}

function check<T>(validator: Checker<T>, value: unknown, bytes: number | undefined): ValidationResult<T> {
  if (!validator.Check(value)) return { ok: false, errors: formatValidationErrors(validator.Errors(value)) }
  const size = bytes ?? Buffer.byteLength(JSON.stringify(value), 'utf8')
  if (size > MAX_MESSAGE_BYTES) return { ok: false, errors: [tooLarge(size)] }
  return { ok: true, message: value }
}

/**
 * Validates a canonical message against its type's schema and the size limit. Errors are one line per
 * problem, each starting with the JSON pointer of the offending field (e.g. "/messageId: ..."). Pass
 * `serializedBytes` when the caller has serialized the message already; otherwise it is serialized here
 * to measure it.
 */
export function validateMessage(value: unknown, serializedBytes?: number): ValidationResult<CanonicalMessage> {
  if (!isPlainObject(value)) return { ok: false, errors: ['/: must be a JSON object'] }
  const type = value.type
  if (type !== 'identify' && type !== 'track' && type !== 'group') {
    return { ok: false, errors: [`/type: must be "identify", "track" or "group"`] }
  }
  return check<CanonicalMessage>(byType[type], value, serializedBytes)
}

export function validateSendEvent(value: unknown, serializedBytes?: number): ValidationResult<SendEvent> {
  if (!isPlainObject(value)) return { ok: false, errors: ['/: must be a JSON object'] }
  return check<SendEvent>(sendEvent, value, serializedBytes)
}

function decode<T>(
  value: Buffer | string | null | undefined,
  validate: (value: unknown, bytes: number) => ValidationResult<T>,
): ValidationResult<T> {
  if (value === null || value === undefined) return { ok: false, errors: ['/: empty value (tombstone)'] }
  const bytes = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length
  // Checked before parsing: an oversized value is rejected without paying for JSON.parse.
  if (bytes > MAX_MESSAGE_BYTES) return { ok: false, errors: [tooLarge(bytes)] }
  let parsed: unknown
  try {
    parsed = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'))
  } catch (err) {
    return { ok: false, errors: [`/: not valid JSON (${(err as Error).message})`] }
  }
  return validate(parsed, bytes)
}

/** Parses a Kafka record value (UTF-8 JSON) and validates it as a canonical message. */
export function decodeMessage(value: Buffer | string | null | undefined): ValidationResult<CanonicalMessage> {
  return decode(value, validateMessage)
}

/** Parses a lookstream.sends.v1 record value and validates it as a SendEvent. */
export function decodeSendEvent(value: Buffer | string | null | undefined): ValidationResult<SendEvent> {
  return decode(value, validateSendEvent)
}
