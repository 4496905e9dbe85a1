import { isUtf8 } from 'node:buffer'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import { parseExact } from '@lookstream/events'
import { countMembers, countWrittenMembers } from '../looker/json-members.ts'

// Reads a Looker execute body from the request stream with bounded memory.
//
// The body is a JSON object whose `attachment.data` string (pushed data) can be tens of megabytes; everything
// else is small. A byte scanner follows strings and nesting; the raw content of `attachment.data` (still
// JSON-escaped, and base64 when the mimetype says so) goes to a file in a fresh temporary directory as it
// arrives, and the rest of the body (the envelope, with `attachment.data` left as "") is kept and parsed with
// JSON.parse once the body is complete. The attachment is decoded while it is read back (attachmentSource), so
// neither the body nor the attachment is ever held whole. `form_params` may follow the attachment (Looker writes
// it last), which is why the attachment is spooled rather than streamed straight into the send.

export class ExecuteBodyError extends Error {
  readonly status: number
  constructor(message: string, status: number) {
    super(message)
    this.status = status
  }
}

export interface SpooledAttachment {
  /** File holding the raw (JSON-escaped) content of attachment.data. */
  path: string
  /** Bytes of that raw content. */
  bytes: number
  /** SHA-256 (hex) of that raw content: identifies a re-delivery of the same data. */
  sha256: string
}

export interface ExecuteBody {
  /** The parsed body with attachment.data replaced by "". */
  envelope: unknown
  attachment: SpooledAttachment | undefined
  /** Removes the spool directory (idempotent). */
  cleanup(): Promise<void>
}

export interface ExecuteBodyLimits {
  /** Whole body, attachment included (MAX_BODY_BYTES). */
  maxBodyBytes: number
  /** Everything but attachment.data (MAX_ENVELOPE_BYTES). */
  maxEnvelopeBytes: number
  /** Directory the spool directories are made in. */
  spoolDir: string
  /** When it fires before the body is complete, reading stops with a 408 ExecuteBodyError. */
  deadline?: { signal: AbortSignal; ms: number }
}

/**
 * The chunks of `source` until `signal` fires; then it throws `onAbort()` (the source is left unread). Each wait
 * races a promise of its own: one long-lived abort promise would keep a reaction, and through it every chunk
 * already read, for each wait (a 60 MB upload held whole).
 */
async function* untilAborted(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  onAbort: () => Error,
): AsyncGenerator<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]()
  for (;;) {
    if (signal.aborted) throw onAbort()
    let abort: (() => void) | undefined
    const aborted = new Promise<never>((_, reject) => {
      abort = () => reject(onAbort())
    })
    signal.addEventListener('abort', abort!, { once: true })
    let next: IteratorResult<Uint8Array>
    try {
      next = await Promise.race([iterator.next(), aborted])
    } finally {
      signal.removeEventListener('abort', abort!)
    }
    if (next.done === true) return
    yield next.value
  }
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const MAX_TRACKED_KEY_BYTES = 64

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Reads and splits an execute body; throws ExecuteBodyError (status 400 or 413) for a body it cannot take. */
export async function readExecuteBody(
  source: AsyncIterable<Uint8Array>,
  limits: ExecuteBodyLimits,
): Promise<ExecuteBody> {
  let dir: string | undefined
  let spool: ReturnType<typeof createWriteStream> | undefined
  let spoolBytes = 0
  const hash = createHash('sha256')
  const cleanup = async () => {
    spool?.destroy()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    dir = undefined
  }

  const envelope: Buffer[] = []
  let envelopeBytes = 0
  let bodyBytes = 0
  // Scanner state: nesting (container types of the first two levels), strings, and the key path at levels 1-2.
  let depth = 0
  const containers: number[] = [] // OPEN_OBJECT or OPEN_ARRAY per level, for levels 1 and 2
  let inString = false
  let escaped = false
  let expectKey = false // the next string at this level (1 or 2, inside an object) is a key
  let stringIsKey = false
  let keyParts: number[] = []
  let rootKey = ''
  let innerKey = ''
  let inData = false // inside the content of attachment.data
  let dataSeen = false

  const keep = (chunk: Buffer, start: number, end: number) => {
    if (end <= start) return
    envelopeBytes += end - start
    if (envelopeBytes > limits.maxEnvelopeBytes) {
      throw new ExecuteBodyError(
        `The execute body without attachment.data is over the ${limits.maxEnvelopeBytes}-byte limit (MAX_ENVELOPE_BYTES).`,
        413,
      )
    }
    envelope.push(chunk.subarray(start, end))
  }
  const writeSpool = async (chunk: Buffer) => {
    if (chunk.length === 0) return
    spoolBytes += chunk.length
    hash.update(chunk)
    if (!spool!.write(chunk)) await new Promise<void>((resolve) => spool!.once('drain', resolve))
  }

  const deadline = limits.deadline
  const chunks =
    deadline === undefined
      ? source
      : untilAborted(
          source,
          deadline.signal,
          () =>
            new ExecuteBodyError(
              `The execute body did not arrive within the ${deadline.ms} ms send deadline (SEND_DEADLINE_MS).`,
              408,
            ),
        )
  try {
    for await (const piece of chunks) {
      const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)
      bodyBytes += chunk.length
      if (bodyBytes > limits.maxBodyBytes) {
        throw new ExecuteBodyError(
          `The request body is over the ${limits.maxBodyBytes}-byte limit (MAX_BODY_BYTES).`,
          413,
        )
      }
      let keptFrom = 0
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i]!
        if (inData) {
          // Content of attachment.data: find its closing quote; escapes are decoded when it is read back.
          let end = -1
          for (; i < chunk.length; i++) {
            const d = chunk[i]!
            if (escaped) escaped = false
            else if (d === BACKSLASH) escaped = true
            else if (d === QUOTE) {
              end = i
              break
            }
          }
          if (end === -1) {
            await writeSpool(chunk.subarray(keptFrom))
            keptFrom = chunk.length
            break
          }
          await writeSpool(chunk.subarray(keptFrom, end))
          keptFrom = end // the closing quote is kept: the envelope holds "data":""
          inData = false
          inString = false
          continue
        }
        if (inString) {
          if (escaped) escaped = false
          else if (c === BACKSLASH) escaped = true
          else if (c === QUOTE) {
            inString = false
            if (stringIsKey) {
              const key = keyParts.length > MAX_TRACKED_KEY_BYTES ? '' : Buffer.from(keyParts).toString('latin1')
              if (depth === 1) rootKey = key
              else innerKey = key
              expectKey = false
            }
          } else if (stringIsKey && keyParts.length <= MAX_TRACKED_KEY_BYTES) keyParts.push(c)
          continue
        }
        if (c === QUOTE) {
          inString = true
          escaped = false
          const inObject = (depth === 1 || depth === 2) && containers[depth - 1] === OPEN_OBJECT
          stringIsKey = inObject && expectKey
          keyParts = []
          if (
            !stringIsKey &&
            depth === 2 &&
            inObject &&
            rootKey === 'attachment' &&
            containers[0] === OPEN_OBJECT &&
            innerKey === 'data'
          ) {
            if (dataSeen) throw new ExecuteBodyError('The execute body has more than one attachment.data.', 400)
            dataSeen = true
            inData = true
            keep(chunk, keptFrom, i + 1) // up to and including the opening quote
            keptFrom = i + 1
            dir = await mkdtemp(join(limits.spoolDir, 'lookstream-push-'))
            spool = createWriteStream(join(dir, 'attachment'))
          }
        } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
          depth++
          if (depth <= 2) containers[depth - 1] = c
          expectKey = c === OPEN_OBJECT && depth <= 2
          if (depth === 2) innerKey = ''
        } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
          depth--
          expectKey = false
        } else if (c === COMMA) {
          expectKey = (depth === 1 || depth === 2) && containers[depth - 1] === OPEN_OBJECT
        } else if (c === COLON) {
          expectKey = false
        }
      }
      if (!inData) keep(chunk, keptFrom, chunk.length)
    }
    if (bodyBytes === 0) throw new ExecuteBodyError('The execute body is empty; it must be a JSON object.', 400)
    if (inData) throw new ExecuteBodyError('The execute body broke off inside attachment.data.', 400)
    if (spool !== undefined) {
      spool.end()
      await finished(spool)
    }
    const text = Buffer.concat(envelope)
    if (!isUtf8(text)) throw new ExecuteBodyError('The execute body is not valid UTF-8.', 400)
    let parsed: unknown
    const envelopeText = text.toString('utf8')
    try {
      // A number a double cannot hold (a scheduled_plan_id beyond 2^53) keeps its text, as a row's numbers do.
      parsed = parseExact(envelopeText)
    } catch (err) {
      const position = /at position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1]
      throw new ExecuteBodyError(
        `The execute body is not valid JSON${position === undefined ? '' : ` (at character ${position} of the body without attachment.data)`}.`,
        400,
      )
    }
    // JSON.parse keeps the last of two members with one key: a second "attachment" or "form_params" would replace
    // the first without a word.
    if (countMembers(parsed) !== countWrittenMembers(envelopeText)) {
      throw new ExecuteBodyError('The execute body has an object that names the same key twice.', 400)
    }
    // attachment.data is spooled only under the keys written plainly; under an escaped key (or as a non-string) it
    // would reach the envelope, and the request would be read as having no attachment.
    const attachment = isObject(parsed) ? parsed.attachment : undefined
    if (dir === undefined && isObject(attachment) && Object.hasOwn(attachment, 'data') && attachment.data !== null) {
      throw new ExecuteBodyError(
        'The execute body has attachment.data that is not a JSON string under the keys "attachment" and "data" written without escapes.',
        400,
      )
    }
    return {
      envelope: parsed,
      attachment:
        dir === undefined
          ? undefined
          : { path: join(dir, 'attachment'), bytes: spoolBytes, sha256: hash.digest('hex') },
      cleanup,
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

/**
 * The bytes of a spooled attachment, decoded as they are read: the JSON string escapes, then base64 when
 * `base64` is set. Throws AttachmentDecodeError at the first byte that is not a valid escape or base64
 * character (never quoting it); nothing is replaced or dropped silently.
 */
export async function* attachmentSource(
  attachment: SpooledAttachment,
  base64: boolean,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const unescape = new JsonStringDecoder()
  const decode = base64 ? new Base64Decoder() : undefined
  const stream = createReadStream(attachment.path, { highWaterMark: 64 * 1024, ...(signal ? { signal } : {}) })
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const bytes = unescape.push(chunk)
    const out = decode ? decode.push(bytes) : bytes
    if (out.length > 0) yield out
  }
  unescape.end()
  const rest = decode?.end()
  if (rest !== undefined && rest.length > 0) yield rest
}

export class AttachmentDecodeError extends Error {}

const ESCAPES: Record<number, number> = {
  0x22: 0x22,
  0x5c: 0x5c,
  0x2f: 0x2f,
  0x62: 0x08,
  0x66: 0x0c,
  0x6e: 0x0a,
  0x72: 0x0d,
  0x74: 0x09,
}

/** Decodes the content of a JSON string, streamed, into UTF-8 bytes. */
export class JsonStringDecoder {
  #carry: Buffer = Buffer.alloc(0)
  #offset = 0 // bytes of raw content consumed before #carry
  #highSurrogate = -1

  push(input: Buffer): Buffer {
    const chunk = this.#carry.length > 0 ? Buffer.concat([this.#carry, input]) : input
    this.#carry = Buffer.alloc(0)
    let slash = chunk.indexOf(BACKSLASH)
    if (slash === -1 && this.#highSurrogate === -1) {
      this.#offset += chunk.length
      return chunk
    }
    const out: Buffer[] = []
    let from = 0
    while (slash !== -1) {
      if (slash > from) {
        this.#loneSurrogate(this.#offset + from)
        out.push(chunk.subarray(from, slash))
        from = slash
      }
      if (slash + 1 >= chunk.length) break
      const kind = chunk[slash + 1]!
      if (kind === 0x75) {
        if (slash + 6 > chunk.length) break
        const hex = chunk.toString('latin1', slash + 2, slash + 6)
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.#fail(slash)
        const unit = parseInt(hex, 16)
        if (unit >= 0xd800 && unit <= 0xdbff) {
          this.#loneSurrogate(this.#offset + slash)
          this.#highSurrogate = unit
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
          if (this.#highSurrogate === -1) this.#fail(slash)
          const point = 0x10000 + ((this.#highSurrogate - 0xd800) << 10) + (unit - 0xdc00)
          this.#highSurrogate = -1
          out.push(Buffer.from(String.fromCodePoint(point), 'utf8'))
        } else {
          this.#loneSurrogate(this.#offset + slash)
          out.push(Buffer.from(String.fromCharCode(unit), 'utf8'))
        }
        from = slash + 6
      } else {
        const byte = ESCAPES[kind]
        if (byte === undefined) this.#fail(slash)
        this.#loneSurrogate(this.#offset + slash)
        out.push(Buffer.of(byte))
        from = slash + 2
      }
      slash = chunk.indexOf(BACKSLASH, from)
    }
    const end = slash === -1 ? chunk.length : slash
    if (end > from) {
      this.#loneSurrogate(this.#offset + from)
      out.push(chunk.subarray(from, end))
    }
    this.#carry = Buffer.from(chunk.subarray(end))
    this.#offset += end
    return out.length === 1 ? out[0]! : Buffer.concat(out)
  }

  end(): void {
    if (this.#carry.length > 0) this.#fail(0)
    this.#loneSurrogate(this.#offset)
  }

  #loneSurrogate(at: number): void {
    if (this.#highSurrogate !== -1) {
      throw new AttachmentDecodeError(
        `attachment.data holds a lone UTF-16 surrogate escape before byte ${at} of its content.`,
      )
    }
  }

  #fail(at: number): never {
    throw new AttachmentDecodeError(
      `attachment.data is not a valid JSON string: bad escape at byte ${this.#offset + at} of its content.`,
    )
  }
}

// Base64 alphabet (standard and URL-safe); whitespace (line breaks of MIME-style base64) is skipped.
const BASE64_VALUE = new Int8Array(256).fill(-1)
for (const [index, char] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) {
  BASE64_VALUE[char.charCodeAt(0)] = index
}
BASE64_VALUE[0x2d] = 62 // '-'
BASE64_VALUE[0x5f] = 63 // '_'
const BASE64_SPACE = new Set([0x20, 0x0a, 0x0d, 0x09])

/** Streams base64 text into bytes; any other character, a short tail or data after '=' padding is an error. */
export class Base64Decoder {
  #quad = 0
  #count = 0
  #padding = 0 // '=' the final group needs (0 while no padding was seen)
  #paddingSeen = 0
  #offset = 0

  push(input: Buffer): Buffer {
    const out = Buffer.allocUnsafe(Math.ceil(((input.length + this.#count) * 3) / 4) + 2)
    let written = 0
    for (let i = 0; i < input.length; i++) {
      const c = input[i]!
      const value = BASE64_VALUE[c]!
      if (value === -1) {
        if (BASE64_SPACE.has(c)) continue
        if (c !== 0x3d) this.#fail(this.#offset + i)
        if (this.#padding === 0) {
          if (this.#count < 2) this.#fail(this.#offset + i)
          const quad = this.#quad << (6 * (4 - this.#count))
          out[written++] = (quad >> 16) & 0xff
          if (this.#count === 3) out[written++] = (quad >> 8) & 0xff
          this.#padding = 4 - this.#count
          this.#paddingSeen = 1
          this.#count = 0
          this.#quad = 0
        } else if (++this.#paddingSeen > this.#padding) this.#fail(this.#offset + i)
        continue
      }
      if (this.#padding > 0) this.#fail(this.#offset + i)
      this.#quad = (this.#quad << 6) | value
      if (++this.#count === 4) {
        out[written++] = (this.#quad >> 16) & 0xff
        out[written++] = (this.#quad >> 8) & 0xff
        out[written++] = this.#quad & 0xff
        this.#quad = 0
        this.#count = 0
      }
    }
    this.#offset += input.length
    return out.subarray(0, written)
  }

  end(): Buffer {
    if (this.#padding > 0 && this.#paddingSeen < this.#padding) this.#fail(this.#offset)
    const count = this.#count
    if (count === 0) return Buffer.alloc(0)
    if (count === 1) this.#fail(this.#offset)
    // An unpadded tail: 2 characters give 1 byte, 3 give 2.
    const quad = this.#quad << (6 * (4 - count))
    return count === 2 ? Buffer.of((quad >> 16) & 0xff) : Buffer.of((quad >> 16) & 0xff, (quad >> 8) & 0xff)
  }

  #fail(at: number): never {
    throw new AttachmentDecodeError(`attachment.data is not valid base64 (at character ${at} of its decoded string).`)
  }
}
