// Streams Looker's json_detail and json_detail_lite_stream documents with bounded memory.
//
// A byte-level scanner follows strings, escapes and nesting depth of the ROOT object only. It keeps the
// small root keys it needs (`fields`, `ran_at`) and hands each element of the root `data` array to
// JSON.parse on its own, so the document is never held whole. Only the root `data` counts: a nested
// `data` (e.g. inside `pivots`) is skipped like any other value (the reference's PR #314 bug).
//
// Structural bytes are all ASCII and never occur inside a UTF-8 multi-byte sequence, so scanning bytes is
// safe; a row's bytes are decoded only once the row is complete, which also handles UTF-8 split across chunks.
//
// Order: Looker writes `fields` before `data`. If `data` comes first anyway, rows are held (as raw text) until
// `fields` arrives, up to `maxPendingBytes`; beyond that the read fails with a clear error rather than
// buffering without bound. `ran_at` is used when it precedes the first row (Looker writes it near the top).
//
// A row is rejected on its own (with its row number and the byte offset where it starts, never its bytes) when
// it is over `maxRowBytes`, nested deeper than `maxDepth`, not valid UTF-8 or not valid JSON; reading goes on
// with the next row. Numbers keep their exact value (exact-json.ts). Errors that end the read (a broken
// document structure) name a byte offset and never quote the document; rows completed before such an error
// are still handed out.

import { isUtf8 } from 'node:buffer'
import { parseExact } from '@lookstream/events'
import { countMembers } from './json-members.ts'

export interface JsonDetailField {
  name: string
  label?: string
  label_short?: string
  field_group_label?: string
  tags?: string[]
  is_numeric?: boolean
  [key: string]: unknown
}

export interface JsonDetailFields {
  dimensions?: JsonDetailField[]
  measures?: JsonDetailField[]
  filters?: JsonDetailField[]
  parameters?: JsonDetailField[]
  table_calculations?: JsonDetailField[]
  pivots?: unknown[]
  [key: string]: unknown
}

export type JsonDetailItem =
  | { kind: 'header'; fields: JsonDetailFields; ranAt: string | undefined }
  | { kind: 'row'; row: number; value: unknown }
  | { kind: 'rejected'; row: number; reason: string }

export interface JsonDetailLimits {
  /** A row (one element of `data`) larger than this is rejected with its row number; reading goes on. */
  maxRowBytes: number
  /** Root values that are kept (`fields`, `ran_at`) may not exceed this. */
  maxHeaderBytes?: number
  /** Rows held while waiting for `fields` when `data` comes first. */
  maxPendingBytes?: number
  /** Deepest nesting of arrays and objects in a row (the row object itself is level 1) or a kept root value. */
  maxDepth?: number
  /** Most fields (dimensions, measures, filters, parameters and table calculations together) a result may have. */
  maxFields?: number
}

export const DEFAULT_MAX_FIELDS = 10_000

/** Default for `maxDepth`: a row, its cells, a pivot level and a value nested 60 levels deep. */
export const DEFAULT_MAX_DEPTH = 64

export class JsonDetailError extends Error {
  readonly code = 'LS_INGRESS_BAD_RESULT'
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d

const EXPECT_ROOT = 0
const EXPECT_KEY_OR_END = 1
const IN_KEY = 2
const EXPECT_COLON = 3
const EXPECT_VALUE = 4
const IN_VALUE = 5
const EXPECT_COMMA_OR_END = 6
const EXPECT_KEY = 7
const EXPECT_DATA_ARRAY = 8
const EXPECT_ROW_OR_END = 9
const EXPECT_ROW = 10
const IN_ROW = 11
const EXPECT_ROW_COMMA_OR_END = 12
const DONE = 13

const KEPT_KEYS = new Set(['fields', 'ran_at'])
const UTF8_BOM = [0xef, 0xbb, 0xbf]
const MAX_KEY_BYTES = 1024

function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

function isScalarEnd(b: number): boolean {
  return b === COMMA || b === CLOSE_OBJECT || b === CLOSE_ARRAY || isWhitespace(b)
}

/** Push-style scanner; `readJsonDetail` drives it from a byte stream. */
export class JsonDetailScanner {
  readonly #limits: Required<JsonDetailLimits>
  readonly #out: JsonDetailItem[] = []
  #state = EXPECT_ROOT
  #key = ''
  #keyParts: Buffer[] = []
  #keyBytes = 0
  // The value being scanned (a kept/skipped root value, or a row).
  #depth = 0
  #inString = false
  #escaped = false
  #isScalar = false
  #parts: Buffer[] = []
  #textValue = ''
  #partBytes = 0
  #capturing = false
  #oversized = false
  #rowNumber = 0
  #seenData = false
  #fields: JsonDetailFields | undefined
  #ranAt: string | undefined
  #headerSent = false
  #pending: {
    row: number
    text: string | undefined
    offset: number
    longNumber: boolean
    members: number
    reason: string | undefined
  }[] = []
  #pendingBytes = 0
  #bytesRead = 0
  // Absolute byte offset where the current value starts; its depth limit was passed; its bytes are not UTF-8.
  #valueOffset = 0
  #tooDeep = false
  #badUtf8 = false
  // Digits of the number being scanned (outside strings; a '.' does not end the count), and whether some number
  // of the value has 16 or more digits or an exponent, so that its exact value needs checking (exact-json.ts).
  #digits = 0
  #longNumber = false
  // Members written in the value (':' outside strings): more than its parse holds means a key written twice.
  #members = 0
  // Objects opened at the value's third level: in `fields`, the field objects. Counted as the bytes go by, so a
  // `fields` of 250,000 fields fails at the cap instead of being gathered and parsed (seconds of blocked loop).
  #thirdLevelObjects = 0
  #seenKept = new Set<string>()
  // Bytes of a UTF-8 byte order mark read at the start of the document.
  #bomBytes = 0
  #error: JsonDetailError | undefined

  constructor(limits: JsonDetailLimits) {
    this.#limits = {
      maxHeaderBytes: 8 * 1024 * 1024,
      maxPendingBytes: 16 * 1024 * 1024,
      maxDepth: DEFAULT_MAX_DEPTH,
      maxFields: DEFAULT_MAX_FIELDS,
      ...limits,
    }
  }

  get bytesRead(): number {
    return this.#bytesRead
  }

  /** Rows completed so far (the number of the last `data` element seen, rejected ones included). */
  get rowsSeen(): number {
    return this.#rowNumber
  }

  /** The error that ended the read, once a chunk ran into one (the items before it were still returned). */
  get error(): JsonDetailError | undefined {
    return this.#error
  }

  /**
   * Scans one chunk; returns the items it completed. On a malformed document the items completed before the
   * error are returned and `error` is set; the next push or end throws it.
   */
  push(chunk: Uint8Array): JsonDetailItem[] {
    if (this.#error) throw this.#error
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    this.#bytesRead += buf.length
    try {
      this.#scan(buf)
    } catch (err) {
      if (!(err instanceof JsonDetailError)) throw err
      this.#error = err
    }
    return this.#out.splice(0)
  }

  /** Ends the document; throws when it broke off or lacked `fields` or `data`. */
  end(): JsonDetailItem[] {
    if (this.#error) throw this.#error
    if (this.#state !== DONE) {
      const where =
        this.#state === EXPECT_ROOT && this.#bytesRead === 0
          ? 'the result body was empty'
          : this.#state === IN_ROW
            ? `the result broke off inside row ${this.#rowNumber} of "data", after ${this.#rowNumber - 1} complete rows`
            : this.#seenData && this.#state >= EXPECT_DATA_ARRAY
              ? `the result broke off inside "data" after row ${this.#rowNumber}`
              : `the result broke off after ${this.#bytesRead} bytes, before the root object closed` +
                (this.#seenData ? ` (after row ${this.#rowNumber})` : '')
      throw new JsonDetailError(`Looker result is incomplete: ${where}.`)
    }
    if (this.#fields === undefined) throw new JsonDetailError('Looker result has no root "fields" object.')
    if (!this.#seenData) throw new JsonDetailError('Looker result has no root "data" array.')
    this.#sendHeader()
    return this.#out.splice(0)
  }

  #fail(message: string): never {
    throw new JsonDetailError(message)
  }

  #scan(buf: Buffer): void {
    const length = buf.length
    let i = 0
    // Start of the current value's bytes within this chunk, when capturing.
    let start = this.#state === IN_VALUE || this.#state === IN_ROW ? 0 : -1
    let keyStart = this.#state === IN_KEY ? 0 : -1
    while (i < length) {
      const b = buf[i]!
      switch (this.#state) {
        case IN_ROW:
        case IN_VALUE: {
          // Tight loop over the value's bytes, on locals (written back below).
          let end = -1
          let depth = this.#depth
          let inString = this.#inString
          let escaped = this.#escaped
          const isScalar = this.#isScalar
          const maxDepth = this.#limits.maxDepth
          let digits = this.#digits
          let members = this.#members
          for (; i < length; i++) {
            const c = buf[i]!
            if (inString) {
              if (escaped) escaped = false
              else if (c === BACKSLASH) escaped = true
              else if (c === QUOTE) {
                inString = false
                if (depth === 0) {
                  end = i + 1
                  break
                }
              }
            } else if (isScalar) {
              if (isScalarEnd(c)) {
                end = i // the delimiter belongs to the enclosing state and is scanned again
                break
              }
            } else if (c === QUOTE) inString = true
            else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
              if (++depth > maxDepth) this.#tooDeep = true
              else if (depth === 3 && c === OPEN_OBJECT) this.#thirdLevelObjects++
            } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
              digits = 0
              if (--depth === 0) {
                end = i + 1
                break
              }
            } else if (c <= 0x39 && c >= 0x30) {
              if (++digits === 16) this.#longNumber = true
            } else if (c !== 0x2e) {
              if (c === COLON) members++
              else if (digits !== 0 && (c | 0x20) === 0x65) this.#longNumber = true // an exponent
              digits = 0
            }
          }
          this.#digits = digits
          this.#members = members
          this.#depth = depth
          this.#inString = inString
          this.#escaped = escaped
          if (end === -1) {
            this.#collect(buf, start, length)
            if (this.#state === IN_VALUE) this.#checkFieldCount()
            return
          }
          if (this.#state === IN_VALUE) this.#checkFieldCount()
          this.#collect(buf, start, end, true)
          start = -1
          i = end
          if (this.#state === IN_ROW) this.#finishRow()
          else this.#finishValue()
          continue
        }
        case IN_KEY: {
          let end = -1
          for (; i < length; i++) {
            const c = buf[i]!
            if (this.#escaped) this.#escaped = false
            else if (c === BACKSLASH) this.#escaped = true
            else if (c === QUOTE) {
              end = i
              break
            }
          }
          const stop = end === -1 ? length : end
          this.#keyBytes += stop - keyStart
          if (this.#keyBytes > MAX_KEY_BYTES) this.#fail('Looker result has a root key over 1 KB.')
          this.#keyParts.push(buf.subarray(keyStart, stop))
          if (end === -1) return
          const rawBytes = Buffer.concat(this.#keyParts)
          this.#keyParts = []
          if (!isUtf8(rawBytes)) this.#fail('Looker result has a root key that is not valid UTF-8.')
          try {
            this.#key = JSON.parse(`"${rawBytes.toString('utf8')}"`) as string
          } catch {
            this.#fail('Looker result has a root key that is not a valid JSON string.')
          }
          this.#state = EXPECT_COLON
          keyStart = -1
          i = end + 1
          continue
        }
        default:
          break
      }
      if (isWhitespace(b)) {
        i++
        continue
      }
      switch (this.#state) {
        case EXPECT_ROOT: {
          // A UTF-8 byte order mark at the very start, however the chunks cut it.
          const at = this.#bytesRead - length + i
          if (at < UTF8_BOM.length && this.#bomBytes === at && b === UTF8_BOM[at]) {
            this.#bomBytes++
            i++
            continue
          }
          if (this.#bomBytes > 0 && this.#bomBytes < UTF8_BOM.length) this.#failNotJson(0)
          if (b !== OPEN_OBJECT) this.#failNotJson(at, b)
          this.#state = EXPECT_KEY_OR_END
          break
        }
        case EXPECT_KEY_OR_END:
        case EXPECT_KEY:
          if (b === CLOSE_OBJECT && this.#state === EXPECT_KEY_OR_END) {
            this.#state = DONE
            break
          }
          if (b !== QUOTE) this.#failAt(buf, i, 'a root key')
          this.#state = IN_KEY
          this.#keyBytes = 0
          this.#escaped = false
          keyStart = i + 1
          break
        case EXPECT_COLON:
          if (b !== COLON) this.#failAt(buf, i, "':'")
          this.#state = this.#key === 'data' ? EXPECT_DATA_ARRAY : EXPECT_VALUE
          break
        case EXPECT_VALUE: {
          const kept = KEPT_KEYS.has(this.#key)
          if (kept) {
            if (this.#seenKept.has(this.#key)) this.#fail(`Looker result has more than one root "${this.#key}" key.`)
            this.#seenKept.add(this.#key)
          }
          this.#startValue(b, kept, this.#bytesRead - length + i)
          this.#state = IN_VALUE
          start = i // the value loop scans the opening byte too
          continue
        }
        case EXPECT_DATA_ARRAY:
          if (this.#seenData) this.#fail('Looker result has more than one root "data" key.')
          if (b !== OPEN_ARRAY) this.#fail('Looker result\'s root "data" is not an array.')
          this.#seenData = true
          this.#state = EXPECT_ROW_OR_END
          break
        case EXPECT_ROW_OR_END:
        case EXPECT_ROW:
          if (b === CLOSE_ARRAY && this.#state === EXPECT_ROW_OR_END) {
            this.#state = EXPECT_COMMA_OR_END
            break
          }
          this.#rowNumber++
          this.#startValue(b, true, this.#bytesRead - length + i)
          this.#state = IN_ROW
          start = i
          continue
        case EXPECT_ROW_COMMA_OR_END:
          if (b === COMMA) this.#state = EXPECT_ROW
          else if (b === CLOSE_ARRAY) this.#state = EXPECT_COMMA_OR_END
          else this.#failAt(buf, i, `',' or ']' after row ${this.#rowNumber}`)
          break
        case EXPECT_COMMA_OR_END:
          if (b === COMMA) this.#state = EXPECT_KEY
          else if (b === CLOSE_OBJECT) this.#state = DONE
          else this.#failAt(buf, i, "',' or '}' in the root object")
          break
        case DONE:
          this.#failAt(buf, i, 'the end of the document')
      }
      i++
    }
  }

  #startValue(b: number, capture: boolean, offset: number): void {
    this.#valueOffset = offset
    this.#tooDeep = false
    this.#badUtf8 = false
    this.#digits = 0
    this.#longNumber = false
    this.#members = 0
    this.#thirdLevelObjects = 0
    this.#depth = 0
    this.#inString = false
    this.#escaped = false
    this.#isScalar = false
    this.#capturing = capture
    this.#oversized = false
    this.#parts = []
    this.#partBytes = 0
    if (b === OPEN_OBJECT || b === OPEN_ARRAY) return
    if (b === QUOTE) return // the value loop sees this quote and enters the string at depth 0
    if (b === CLOSE_OBJECT || b === CLOSE_ARRAY || b === COMMA || b === COLON) {
      this.#fail(
        `Looker result is not valid JSON: unexpected '${String.fromCharCode(b)}' where a value belongs (byte ${offset}).`,
      )
    }
    this.#isScalar = true
  }

  // `complete`: the value ends in this chunk. A value that lies within one chunk (the common case) is decoded
  // straight from it; only values spanning chunks are gathered as slices.
  #collect(buf: Buffer, start: number, end: number, complete = false): void {
    if (!this.#capturing || this.#oversized) return
    this.#partBytes += end - start
    const limit = this.#state === IN_ROW ? this.#limits.maxRowBytes : this.#limits.maxHeaderBytes
    if (this.#partBytes > limit) {
      if (this.#state !== IN_ROW) this.#fail(`Looker result's root "${this.#key}" is over ${limit} bytes.`)
      this.#oversized = true
      this.#parts = []
      return
    }
    if (complete && this.#parts.length === 0) {
      const text = buf.toString('utf8', start, end)
      // Invalid UTF-8 decodes to U+FFFD; only then are the bytes checked (the text may hold a real U+FFFD).
      if (text.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))) this.#badUtf8 = true
      this.#textValue = text
      return
    }
    if (end > start) this.#parts.push(buf.subarray(start, end))
    if (complete) {
      const bytes = Buffer.concat(this.#parts)
      const text = bytes.toString('utf8')
      if (text.includes('\uFFFD') && !isUtf8(bytes)) this.#badUtf8 = true
      this.#textValue = text
      this.#parts = []
    }
  }

  #checkFieldCount(): void {
    const max = this.#limits.maxFields
    if (this.#capturing && this.#key === 'fields' && this.#thirdLevelObjects > max) {
      this.#fail(`Looker result's fields lists more than ${max} fields, over the ${max}-field limit (MAX_FIELDS).`)
    }
  }

  #text(): string {
    const text = this.#textValue
    this.#textValue = ''
    return text
  }

  #finishValue(): void {
    this.#state = EXPECT_COMMA_OR_END
    if (!this.#capturing) return
    const where = `Looker result's root "${this.#key}"`
    if (this.#tooDeep) this.#fail(`${where} is nested deeper than ${this.#limits.maxDepth} levels.`)
    if (this.#badUtf8) this.#fail(`${where} is not valid UTF-8 (it starts at byte ${this.#valueOffset}).`)
    const text = this.#text()
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      const offset = this.#valueOffset
      this.#fail(`${where} is not valid JSON (it starts at byte ${offset}${jsonErrorPosition(err, text, offset)}).`)
    }
    if (this.#key === 'fields') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        this.#fail(`${where} is not an object (it is ${kindOf(value)}).`)
      }
      if (countMembers(value) !== this.#members) {
        this.#fail(`${where} has an object that names the same key twice (it starts at byte ${this.#valueOffset}).`)
      }
      const problem = checkFields(value as Record<string, unknown>, this.#limits.maxFields)
      if (problem !== undefined) this.#fail(`Looker result's ${problem}`)
      this.#fields = value as JsonDetailFields
      this.#flushPending()
    } else if (this.#key === 'ran_at') {
      if (typeof value === 'string') this.#ranAt = value
      else if (value !== null) this.#fail(`${where} is not a string (it is ${kindOf(value)}).`)
    }
  }

  #finishRow(): void {
    this.#state = EXPECT_ROW_COMMA_OR_END
    const row = this.#rowNumber
    const offset = this.#valueOffset
    const invalid = this.#oversized
      ? `row is over the ${this.#limits.maxRowBytes}-byte row limit`
      : this.#tooDeep
        ? `row is nested deeper than ${this.#limits.maxDepth} levels`
        : this.#badUtf8
          ? 'row is not valid UTF-8'
          : undefined
    if (invalid !== undefined) {
      this.#textValue = ''
      const reason = `${invalid} (the row starts at byte ${offset})`
      if (this.#fields === undefined) {
        this.#pending.push({ row, text: undefined, offset, longNumber: false, members: 0, reason })
      } else {
        this.#sendHeader()
        this.#out.push({ kind: 'rejected', row, reason })
      }
      return
    }
    const text = this.#text()
    if (this.#fields === undefined) {
      this.#pendingBytes += text.length
      if (this.#pendingBytes > this.#limits.maxPendingBytes) {
        this.#fail(
          `Looker result has more than ${this.#limits.maxPendingBytes} bytes of "data" before "fields"; "fields" must come first.`,
        )
      }
      this.#pending.push({ row, text, offset, longNumber: this.#longNumber, members: this.#members, reason: undefined })
      return
    }
    this.#sendHeader()
    this.#out.push(this.#parseRow(text, row, offset, this.#longNumber, this.#members))
  }

  #flushPending(): void {
    if (this.#pending.length === 0) return
    this.#sendHeader()
    for (const { row, text, offset, longNumber, members, reason } of this.#pending) {
      this.#out.push(
        text === undefined
          ? { kind: 'rejected', row, reason: reason ?? '' }
          : this.#parseRow(text, row, offset, longNumber, members),
      )
    }
    this.#pending = []
    this.#pendingBytes = 0
  }

  #sendHeader(): void {
    if (this.#headerSent || this.#fields === undefined) return
    this.#headerSent = true
    this.#out.push({ kind: 'header', fields: this.#fields, ranAt: this.#ranAt })
  }

  // The row's text is never quoted in the reason: JSON.parse's own message would (it shows the bytes around
  // the error), so only its position is taken from it.
  #parseRow(text: string, row: number, offset: number, longNumber: boolean, members: number): JsonDetailItem {
    try {
      const value = parseExact(text, longNumber)
      // The key is not named: below a row's field names, keys can be pivot values (row data).
      if (countMembers(value) !== members) {
        return {
          kind: 'rejected',
          row,
          reason: `row has an object that names the same key twice (the row starts at byte ${offset}); JSON keeps one of the two values, so the row is not sent`,
        }
      }
      return { kind: 'row', row, value }
    } catch (err) {
      return {
        kind: 'rejected',
        row,
        reason: `row is not valid JSON (the row starts at byte ${offset}${jsonErrorPosition(err, text, offset)})`,
      }
    }
  }

  #failNotJson(offset: number, byte?: number): never {
    if (byte === OPEN_ARRAY) {
      this.#fail(
        `Looker result is a JSON array (byte ${offset}), not a json_detail object: the action asks Looker for json_detail or json_detail_lite_stream, not json.`,
      )
    }
    if (byte === 0x1f && offset === 0) {
      this.#fail('Looker result is gzip-compressed (byte 0 is 0x1f): lookstream reads the uncompressed JSON.')
    }
    this.#fail(
      `Looker result is not a JSON object: the document must start with '{' (byte ${offset} is not; a CSV, HTML or other body?).`,
    )
  }

  #failAt(buf: Buffer, i: number, expected: string): never {
    this.#fail(`Looker result is not valid JSON: expected ${expected} at byte ${this.#bytesRead - buf.length + i}.`)
  }
}

/** ", the error is at byte N" from a JSON.parse SyntaxError that gives a position; "" when it gives none. */
function jsonErrorPosition(err: unknown, text?: string, offset?: number): string {
  const position = /at position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1]
  if (position === undefined || text === undefined || offset === undefined) return ''
  return `, the error is at byte ${offset + Buffer.byteLength(text.slice(0, Number(position)))}`
}

/** "null", "an array", "a number"...: what a JSON value is, never what it holds. */
export function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  const type = typeof value
  return type === 'object' ? 'an object' : `a ${type}`
}

/**
 * Reads a json_detail / json_detail_lite_stream document from a byte stream. Each yielded batch holds what
 * one chunk completed; the next chunk is read only when the consumer asks for the next batch (backpressure).
 */
export async function* readJsonDetail(
  source: AsyncIterable<Uint8Array>,
  limits: JsonDetailLimits,
  scanner = new JsonDetailScanner(limits),
): AsyncGenerator<JsonDetailItem[], void, undefined> {
  for await (const chunk of source) {
    const items = scanner.push(chunk)
    if (items.length > 0) yield items
    if (scanner.error) throw scanner.error
  }
  const items = scanner.end()
  if (items.length > 0) yield items
}

const FIELD_GROUPS = ['dimensions', 'measures', 'filters', 'parameters', 'table_calculations'] as const
const TEXT_PROPERTIES = ['label', 'label_short', 'field_group_label'] as const

/**
 * What is wrong with a `fields` object, as the rest of a sentence ("fields.dimensions[0] is null; ..."), or
 * undefined when every field is an object with a name and its tags (when given) are strings.
 */
export function checkFields(fields: Record<string, unknown>, maxFields: number): string | undefined {
  let count = 0
  for (const group of FIELD_GROUPS) {
    const list = fields[group]
    if (list === undefined || list === null) continue
    if (!Array.isArray(list)) return `fields.${group} is ${kindOf(list)}; it must be an array of fields.`
    count += list.length
  }
  if (count > maxFields) return `fields lists ${count} fields, over the ${maxFields}-field limit (MAX_FIELDS).`
  for (const group of FIELD_GROUPS) {
    const list = fields[group]
    if (!Array.isArray(list)) continue
    for (let index = 0; index < list.length; index++) {
      const field: unknown = list[index]
      const at = `fields.${group}[${index}]`
      if (field === null || typeof field !== 'object' || Array.isArray(field)) {
        return `${at} is ${kindOf(field)}; a field must be an object with a "name" string.`
      }
      const { name, tags } = field as Record<string, unknown>
      if (typeof name !== 'string') return `${at}.name is ${kindOf(name)}; it must be a string.`
      if (name === '') return `${at}.name is empty.`
      if (tags !== undefined && tags !== null) {
        if (!Array.isArray(tags))
          return `${at}.tags (field ${name}) is ${kindOf(tags)}; it must be an array of strings.`
        for (let t = 0; t < tags.length; t++) {
          if (typeof tags[t] !== 'string') {
            return `${at}.tags[${t}] (field ${name}) is ${kindOf(tags[t])}; tags must be strings.`
          }
        }
      }
      for (const property of TEXT_PROPERTIES) {
        const text = (field as Record<string, unknown>)[property]
        if (text !== undefined && text !== null && typeof text !== 'string') {
          return `${at}.${property} (field ${name}) is ${kindOf(text)}; it must be a string.`
        }
      }
    }
  }
  const pivots = fields.pivots
  if (pivots !== undefined && pivots !== null && !Array.isArray(pivots)) {
    return `fields.pivots is ${kindOf(pivots)}; it must be an array.`
  }
  return undefined
}

/** All fields in the order the reference hub uses: dimensions, measures, filters, parameters, table calculations. */
export function allFields(fields: JsonDetailFields): JsonDetailField[] {
  const groups = [fields.dimensions, fields.measures, fields.filters, fields.parameters, fields.table_calculations]
  return groups.flatMap((group) => (Array.isArray(group) ? group : []))
}
