import { type IHeaders } from 'kafkajs'

/** Record headers as the rest of lookstream sees them: one UTF-8 string per name. */
export type RecordHeaders = Record<string, string>

export function toKafkaHeaders(headers: RecordHeaders | undefined): IHeaders | undefined {
  if (headers === undefined) return undefined
  const out: IHeaders = {}
  for (const [name, value] of Object.entries(headers)) out[name] = value
  return out
}

// Header values repeat from record to record (destinations, schema, producer, the send id across a send), so the
// last value seen per name is kept with its bytes: a match returns the same string without decoding or
// allocating one per record. Bounded in names and value size, since other producers choose both.
const MAX_CACHED_NAMES = 64
const MAX_CACHED_BYTES = 128
const lastValues = new Map<string, { bytes: Buffer; text: string }>()

function decodeValue(name: string, bytes: Buffer): string {
  const last = lastValues.get(name)
  if (last !== undefined && last.bytes.length === bytes.length) {
    const known = last.bytes
    let i = 0
    while (i < bytes.length && known[i] === bytes[i]) i++
    if (i === bytes.length) return last.text
  }
  const text = bytes.toString('utf8')
  if (bytes.length <= MAX_CACHED_BYTES && (last !== undefined || lastValues.size < MAX_CACHED_NAMES)) {
    // A copy: the record's buffer is a view into kafkajs' fetch response.
    lastValues.set(name, { bytes: Buffer.from(bytes), text })
  }
  return text
}

/** kafkajs gives Buffers (and an array when a name repeats); the first value of a name wins. */
export function fromKafkaHeaders(headers: IHeaders | undefined): RecordHeaders {
  const out: RecordHeaders = {}
  if (headers === undefined) return out
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue
    const raw = headers[name]
    const value = Array.isArray(raw) ? raw[0] : raw
    if (value === undefined) continue
    out[name] = typeof value === 'string' ? value : decodeValue(name, value)
  }
  return out
}
