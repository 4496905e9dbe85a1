import { decodeFields, encodeFields, type Message } from './codec.ts'
import { Reader } from './reader.ts'
import { type ApiDef } from './schema.ts'
import { Writer } from './writer.ts'

export interface RequestHeader {
  apiKey: number
  apiVersion: number
  correlationId: number
  clientId: string | null
}

// Request header v1 (v2 adds a tagged-field section for flexible versions). client_id stays an int16
// string even in v2.
export function decodeRequestHeader(r: Reader): RequestHeader {
  return { apiKey: r.int16(), apiVersion: r.int16(), correlationId: r.int32(), clientId: r.nullableString() }
}

export function isFlexible(def: ApiDef, version: number): boolean {
  return version >= def.flexibleFrom
}

export function decodeRequestBody(def: ApiDef, version: number, r: Reader): Message {
  const flexible = isFlexible(def, version)
  if (flexible) r.skipTaggedFields()
  return decodeFields(r, def.request, version, flexible)
}

// A whole response frame (size prefix, header, body) as chunks for a single writev. ApiVersions always
// answers with response header v0, so clients can parse it before they know what the broker speaks.
export function encodeResponse(def: ApiDef, version: number, correlationId: number, body: Message): Buffer[] {
  const flexible = isFlexible(def, version)
  const w = new Writer()
  w.int32(0)
  w.int32(correlationId)
  if (flexible && def.key !== 18) w.uvarint(0)
  encodeFields(w, def.response, body, version, flexible)
  const total = w.length
  const chunks = w.finish()
  chunks[0]!.writeInt32BE(total - 4, 0)
  return chunks
}

// The request side, used by tests and the benchmark to speak raw protocol.
export function encodeRequest(def: ApiDef, header: RequestHeader, body: Message): Buffer {
  const flexible = isFlexible(def, header.apiVersion)
  const w = new Writer()
  w.int32(0)
  w.int16(header.apiKey)
  w.int16(header.apiVersion)
  w.int32(header.correlationId)
  w.nullableString(header.clientId)
  if (flexible) w.uvarint(0)
  encodeFields(w, def.request, body, header.apiVersion, flexible)
  const frame = Buffer.concat(w.finish())
  frame.writeInt32BE(frame.length - 4, 0)
  return frame
}

export function decodeResponseBody(
  def: ApiDef,
  version: number,
  frame: Buffer,
): { correlationId: number; body: Message } {
  const r = new Reader(frame)
  const correlationId = r.int32()
  const flexible = isFlexible(def, version)
  if (flexible && def.key !== 18) r.skipTaggedFields()
  return { correlationId, body: decodeFields(r, def.response, version, flexible) }
}
