import { firstInexactNumber, mayHoldInexactNumber } from './exact-json.ts'
import { Compile } from 'typebox/compile'
import { Format } from 'typebox/format'
import { Connection, GroupMessage, IdentifyMessage, TrackMessage, type CanonicalMessage } from './message-schema.ts'
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

// The fast path below: the checks of message-schema.ts for the messages lookstream's own producers write, in
// plain code. It only ever answers "valid" when the compiled schema would; for anything else (a misspelt field,
// per-destination options beyond `connection`, a near-limit string measured in code points) it answers "not
// sure" and the compiled validator decides, so errors and edge cases are the schema's own. It relies on plain
// data (own, enumerable data properties only): values from JSON.parse (decodeMessage) or messages a producer
// built from literals and such values (validateBuiltMessage).
const isConnection = new RegExp((Connection as { pattern?: string }).pattern ?? '(?!)', 'u')
const isTimestamp = dateTime === undefined ? () => true : rememberingLast(dateTime)

function isShortString(value: unknown, maxLength: number): boolean {
  // UTF-16 length bounds the code point count from above: within it, the schema's maxLength holds.
  return typeof value === 'string' && value.length >= 1 && value.length <= maxLength
}

function isOpenObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function surelyValidContext(context: unknown): boolean {
  if (!isOpenObject(context)) return false
  const lookstream = context.lookstream
  if (lookstream !== undefined) {
    if (!isOpenObject(lookstream)) return false
    for (const key in lookstream) if (key !== 'sendId' && key !== 'row' && key !== 'action') return false
    const row = lookstream.row
    if (!isShortString(lookstream.sendId, 128) || !isShortString(lookstream.action, 128)) return false
    if (typeof row !== 'number' || !Number.isInteger(row) || row < 0) return false
  }
  const library = context.library
  if (library !== undefined) {
    if (!isOpenObject(library) || typeof library.name !== 'string' || typeof library.version !== 'string') return false
    if (library.name.length > 128 || library.version.length > 64) return false
  }
  return true
}

function surelyValidIntegrations(integrations: unknown): boolean {
  if (!isOpenObject(integrations)) return false
  for (const key in integrations) {
    const setting = integrations[key]
    if (key === 'All') {
      if (typeof setting !== 'boolean') return false
      continue
    }
    if (key !== 'Segment' && key !== 'Braze' && key !== 'Heap' && key !== 'mParticle' && key !== 'Recurly Engage') {
      return false
    }
    if (typeof setting === 'boolean') continue
    if (!isOpenObject(setting)) return false
    for (const option in setting) if (!surelyValidOption(key, option, setting[option])) return false
  }
  return true
}

const isEnvId = /^[0-9]{1,32}$/

/** One option of a destination's integration settings, as the destination's options schema (message-schema.ts). */
function surelyValidOption(destination: string, option: string, value: unknown): boolean {
  if (option === 'connection') return typeof value === 'string' && isConnection.test(value)
  switch (destination) {
    case 'Braze':
      switch (option) {
        case 'identifierKey':
          return value === 'external_id' || value === 'braze_id'
        case 'exportLabel':
          return isShortString(value, 255)
        case 'updateExistingOnly':
          return typeof value === 'boolean'
        case 'nulls':
          return value === 'skip' || value === 'send'
      }
      return false
    case 'Heap':
      switch (option) {
        case 'propertyType':
          return value === 'user' || value === 'account'
        case 'joinKey':
          return isShortString(value, 255)
        case 'envId':
          return typeof value === 'string' && isEnvId.test(value)
        case 'longValues':
          return value === 'reject' || value === 'truncate'
      }
      return false
    case 'mParticle':
      switch (option) {
        case 'environment':
          return value === 'production' || value === 'development'
        case 'dataType':
          return value === 'user_data' || value === 'event_data'
        case 'eventType':
          return isShortString(value, 64)
      }
      return false
  }
  return false
}

function surelyValidMessage(value: Record<string, unknown>): boolean {
  const type = value.type
  if (type !== 'identify' && type !== 'track' && type !== 'group') return false
  for (const key in value) {
    // JSON.parse never yields undefined; a built message may, and the schema decides what it means.
    if (value[key] === undefined) return false
    switch (key) {
      case 'type':
      case 'messageId':
      case 'userId':
      case 'anonymousId':
      case 'context':
      case 'timestamp':
      case 'integrations':
        break
      case 'traits':
        if (type === 'track') return false
        break
      case 'event':
      case 'properties':
        if (type !== 'track') return false
        break
      case 'groupId':
        if (type !== 'group') return false
        break
      default:
        return false
    }
  }
  if (!isShortString(value.messageId, 99)) return false
  if (!('userId' in value) && !('anonymousId' in value)) return false
  if (value.userId !== undefined && !isShortString(value.userId, 1024)) return false
  if (value.anonymousId !== undefined && !isShortString(value.anonymousId, 1024)) return false
  if (typeof value.timestamp !== 'string' || !isTimestamp(value.timestamp)) return false
  if (!surelyValidIntegrations(value.integrations)) return false
  if (value.context !== undefined && !surelyValidContext(value.context)) return false
  if (type === 'track') {
    if (!isShortString(value.event, 1024)) return false
    if (value.properties !== undefined && !isOpenObject(value.properties)) return false
  } else {
    if (type === 'group' && !isShortString(value.groupId, 1024)) return false
    if (value.traits !== undefined && !isOpenObject(value.traits)) return false
  }
  return true
}

function validateParsedMessage(value: unknown, bytes: number): ValidationResult<CanonicalMessage> {
  if (isPlainObject(value) && bytes <= MAX_MESSAGE_BYTES && surelyValidMessage(value)) {
    return { ok: true, message: value as unknown as CanonicalMessage }
  }
  return validateMessage(value, bytes)
}

/**
 * validateMessage for a message the caller built itself from plain data (object literals, spreads and values
 * from JSON.parse, no getters or class instances), with `serializedBytes` measured from its JSON: the usual
 * messages skip the compiled schema, as decodeMessage's do; for anything else the compiled schema answers.
 */
export function validateBuiltMessage(value: unknown, serializedBytes: number): ValidationResult<CanonicalMessage> {
  return validateParsedMessage(value, serializedBytes)
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
  const text = typeof value === 'string' ? value : value.toString('utf8')
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    // JSON.parse's message quotes the text around the error: only the position is taken from it.
    return { ok: false, errors: [`/: not valid JSON${jsonErrorAt(err, text)}`] }
  }
  // A number JSON.parse cannot hold as written would reach the destination changed (rounded, 0, or null for
  // 1e400): refused by where it is, never by what it is.
  if (mayHoldInexactNumber(text)) {
    const at = firstInexactNumber(text)
    if (at !== undefined) {
      return {
        ok: false,
        errors: [
          `${at}: a number a double cannot hold exactly (more than 15 significant digits, or out of range); send it as a string of its digits`,
        ],
      }
    }
  }
  return validate(parsed, bytes)
}

/** " (at byte N)" from a JSON.parse SyntaxError that gives a position, else "". */
function jsonErrorAt(err: unknown, text: string): string {
  const position = /at position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1]
  return position === undefined ? '' : ` (at byte ${Buffer.byteLength(text.slice(0, Number(position)))})`
}

/** Parses a Kafka record value (UTF-8 JSON) and validates it as a canonical message. */
export function decodeMessage(value: Buffer | string | null | undefined): ValidationResult<CanonicalMessage> {
  return decode(value, validateParsedMessage)
}

/** Parses a lookstream.sends.v1 record value and validates it as a SendEvent. */
export function decodeSendEvent(value: Buffer | string | null | undefined): ValidationResult<SendEvent> {
  return decode(value, validateSendEvent)
}
