import { type IHeaders } from 'kafkajs'

/** Record headers as the rest of lookstream sees them: one UTF-8 string per name. */
export type RecordHeaders = Record<string, string>

export function toKafkaHeaders(headers: RecordHeaders | undefined): IHeaders | undefined {
  if (headers === undefined) return undefined
  const out: IHeaders = {}
  for (const [name, value] of Object.entries(headers)) out[name] = value
  return out
}

/** kafkajs gives Buffers (and an array when a name repeats); the first value of a name wins. */
export function fromKafkaHeaders(headers: IHeaders | undefined): RecordHeaders {
  const out: RecordHeaders = {}
  if (headers === undefined) return out
  for (const [name, raw] of Object.entries(headers)) {
    const value = Array.isArray(raw) ? raw[0] : raw
    if (value === undefined) continue
    out[name] = typeof value === 'string' ? value : value.toString('utf8')
  }
  return out
}
