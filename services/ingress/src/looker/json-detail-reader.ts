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
}

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
  #pending: { row: number; text: string | undefined; reason: string | undefined }[] = []
  #pendingBytes = 0
  #bytesRead = 0

  constructor(limits: JsonDetailLimits) {
    this.#limits = { maxHeaderBytes: 8 * 1024 * 1024, maxPendingBytes: 16 * 1024 * 1024, ...limits }
  }

  get bytesRead(): number {
    return this.#bytesRead
  }

  /** Rows completed so far (the number of the last `data` element seen, rejected ones included). */
  get rowsSeen(): number {
    return this.#rowNumber
  }

  /** Scans one chunk; returns the items it completed. Throws JsonDetailError on a malformed document. */
  push(chunk: Uint8Array): JsonDetailItem[] {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    this.#bytesRead += buf.length
    this.#scan(buf)
    return this.#out.splice(0)
  }

  /** Ends the document; throws when it broke off or lacked `fields` or `data`. */
  end(): JsonDetailItem[] {
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
            else if (c === OPEN_OBJECT || c === OPEN_ARRAY) depth++
            else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
              if (--depth === 0) {
                end = i + 1
                break
              }
            }
          }
          this.#depth = depth
          this.#inString = inString
          this.#escaped = escaped
          if (end === -1) {
            this.#collect(buf, start, length)
            return
          }
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
          const raw = Buffer.concat(this.#keyParts).toString('utf8')
          this.#keyParts = []
          this.#key = JSON.parse(`"${raw}"`) as string
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
        case EXPECT_ROOT:
          if (b === 0xef && this.#bytesRead === length && i === 0 && buf[1] === 0xbb && buf[2] === 0xbf) {
            i += 3 // UTF-8 byte order mark
            continue
          }
          if (b !== OPEN_OBJECT) this.#failNotJson(buf, i)
          this.#state = EXPECT_KEY_OR_END
          break
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
        case EXPECT_VALUE:
          this.#startValue(b, KEPT_KEYS.has(this.#key))
          this.#state = IN_VALUE
          start = i // the value loop scans the opening byte too
          continue
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
          this.#startValue(b, true)
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

  #startValue(b: number, capture: boolean): void {
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
      this.#fail(`Looker result is not valid JSON: unexpected '${String.fromCharCode(b)}' where a value belongs.`)
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
      this.#textValue = buf.toString('utf8', start, end)
      return
    }
    if (end > start) this.#parts.push(buf.subarray(start, end))
    if (complete) {
      this.#textValue = Buffer.concat(this.#parts).toString('utf8')
      this.#parts = []
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
    const value = this.#parse(this.#text(), `root "${this.#key}"`)
    if (this.#key === 'fields') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        this.#fail('Looker result\'s root "fields" is not an object.')
      }
      this.#fields = value as JsonDetailFields
      this.#flushPending()
    } else if (this.#key === 'ran_at' && typeof value === 'string') {
      this.#ranAt = value
    }
  }

  #finishRow(): void {
    this.#state = EXPECT_ROW_COMMA_OR_END
    const row = this.#rowNumber
    if (this.#oversized) {
      const reason = `row is over the ${this.#limits.maxRowBytes}-byte row limit`
      if (this.#fields === undefined) this.#pending.push({ row, text: undefined, reason })
      else {
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
      this.#pending.push({ row, text, reason: undefined })
      return
    }
    this.#sendHeader()
    this.#out.push({ kind: 'row', row, value: this.#parse(text, row) })
  }

  #flushPending(): void {
    if (this.#pending.length === 0) return
    this.#sendHeader()
    for (const { row, text, reason } of this.#pending) {
      this.#out.push(
        text === undefined
          ? { kind: 'rejected', row, reason: reason ?? '' }
          : { kind: 'row', row, value: this.#parse(text, row) },
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

  /** `where`: a row number, or a description; a number keeps the per-row call free of a string to build. */
  #parse(text: string, where: number | string): unknown {
    try {
      return JSON.parse(text)
    } catch (err) {
      const what = typeof where === 'number' ? `row ${where}` : where
      throw new JsonDetailError(`Looker result is not valid JSON in ${what}: ${(err as Error).message}`)
    }
  }

  #failNotJson(buf: Buffer, i: number): never {
    const preview = buf
      .subarray(i, i + 40)
      .toString('utf8')
      .replace(/[^\x20-\x7e]/g, '?')
    this.#fail(`Looker result is not a JSON object (it starts with ${JSON.stringify(preview)}).`)
  }

  #failAt(buf: Buffer, i: number, expected: string): never {
    const found = String.fromCharCode(buf[i]!).replace(/[^\x20-\x7e]/g, '?')
    this.#fail(
      `Looker result is not valid JSON: expected ${expected} but found '${found}' at byte ${this.#bytesRead - buf.length + i}.`,
    )
  }
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
  }
  const items = scanner.end()
  if (items.length > 0) yield items
}

/** All fields in the order the reference hub uses: dimensions, measures, filters, parameters, table calculations. */
export function allFields(fields: JsonDetailFields): JsonDetailField[] {
  const groups = [fields.dimensions, fields.measures, fields.filters, fields.parameters, fields.table_calculations]
  return groups.flatMap((group) => (Array.isArray(group) ? group : []))
}
