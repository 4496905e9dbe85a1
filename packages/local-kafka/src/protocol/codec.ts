import { Reader } from './reader.ts'
import { type FieldDef, type ScalarType } from './schema.ts'
import { Writer } from './writer.ts'

export type Message = Record<string, unknown>

function readScalar(r: Reader, type: ScalarType, flexible: boolean, nullable: boolean): unknown {
  switch (type) {
    case 'int8':
      return r.int8()
    case 'int16':
      return r.int16()
    case 'int32':
      return r.int32()
    case 'int64':
      return r.int64()
    case 'uint32':
      return r.uint32()
    case 'float64':
      return r.float64()
    case 'bool':
      return r.bool()
    case 'uuid':
      return r.uuid()
    case 'string': {
      const s = flexible ? r.compactNullableString() : r.nullableString()
      if (s === null && !nullable) throw new RangeError('null in a non-nullable string')
      return s
    }
    case 'bytes':
    case 'records': {
      const b = flexible ? r.compactNullableBytes() : r.nullableBytes()
      if (b === null && !nullable && type === 'bytes') throw new RangeError('null in non-nullable bytes')
      return b
    }
  }
}

function readArrayLength(r: Reader, flexible: boolean): number {
  const n = flexible ? r.uvarint() - 1 : r.int32()
  // Each element takes at least one byte, which bounds a hostile length before any allocation.
  if (n > r.remaining()) throw new RangeError('array length beyond end of buffer')
  return n
}

function readValue(r: Reader, f: FieldDef, version: number, flexible: boolean): unknown {
  const nullable = version >= f.nullableMin
  if (typeof f.type === 'string') return readScalar(r, f.type, flexible, nullable)
  const n = readArrayLength(r, flexible)
  if (n < 0) {
    if (!nullable) throw new RangeError(`null array in ${f.name}`)
    return null
  }
  const items: unknown[] = new Array<unknown>(n)
  if (Array.isArray(f.type)) {
    for (let i = 0; i < n; i++) items[i] = decodeFields(r, f.type, version, flexible)
  } else {
    const t = f.type.arrayOf
    for (let i = 0; i < n; i++) items[i] = readScalar(r, t, flexible, false)
  }
  return items
}

export function decodeFields(r: Reader, fields: FieldDef[], version: number, flexible: boolean): Message {
  const out: Message = {}
  let tagged: FieldDef[] | undefined
  for (const f of fields) {
    const present = version >= f.min && version <= f.max && (f.tag === undefined || flexible)
    if (!present || f.tag !== undefined) {
      out[f.name] = cloneDefault(f.default)
      if (present) (tagged ??= []).push(f)
      continue
    }
    out[f.name] = readValue(r, f, version, flexible)
  }
  if (!flexible) return out
  const count = r.uvarint()
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint()
    const body = r.slice(r.uvarint())
    const f = tagged?.find((t) => t.tag === tag)
    // Unknown tags are skipped, as Kafka does.
    if (f !== undefined) out[f.name] = readValue(new Reader(body), f, version, flexible)
  }
  return out
}

function cloneDefault(v: unknown): unknown {
  return Array.isArray(v) ? [] : v
}

function writeScalar(w: Writer, type: ScalarType, value: unknown, flexible: boolean, name: string): void {
  switch (type) {
    case 'int8':
      return w.int8(num(value, name))
    case 'int16':
      return w.int16(num(value, name))
    case 'int32':
      return w.int32(num(value, name))
    case 'int64':
      return w.int64(num(value, name))
    case 'uint32':
      return w.uint32(num(value, name))
    case 'float64':
      return w.float64(num(value, name))
    case 'bool':
      return w.bool(value === true)
    case 'uuid':
      return w.raw(Buffer.isBuffer(value) && value.length === 16 ? value : Buffer.alloc(16))
    case 'string': {
      const s = value === null || value === undefined ? null : typeof value === 'string' ? value : JSON.stringify(value)
      return flexible ? w.compactNullableString(s) : w.nullableString(s)
    }
    case 'bytes': {
      const b = value instanceof Buffer ? value : value === null || value === undefined ? null : Buffer.alloc(0)
      return flexible ? w.compactNullableBytes(b) : w.nullableBytes(b)
    }
    case 'records':
      return w.records((value as Buffer[] | Buffer | null | undefined) ?? null, flexible)
  }
}

function num(value: unknown, name: string): number {
  if (typeof value === 'number') return value
  if (value === undefined || value === null) return 0
  if (typeof value === 'bigint') return Number(value)
  if (typeof value === 'boolean') return value ? 1 : 0
  throw new TypeError(`field ${name}: expected a number`)
}

function writeValue(w: Writer, f: FieldDef, value: unknown, version: number, flexible: boolean): void {
  const nullable = version >= f.nullableMin
  if (typeof f.type === 'string') {
    if (value === null && !nullable && (f.type === 'string' || f.type === 'bytes')) {
      value = f.type === 'string' ? '' : Buffer.alloc(0)
    }
    writeScalar(w, f.type, value, flexible, f.name)
    return
  }
  if (!Array.isArray(value)) {
    if (nullable) {
      if (flexible) w.uvarint(0)
      else w.int32(-1)
    } else if (flexible) w.uvarint(1)
    else w.int32(0)
    return
  }
  if (flexible) w.uvarint(value.length + 1)
  else w.int32(value.length)
  if (Array.isArray(f.type)) {
    for (const item of value) encodeFields(w, f.type, item as Message, version, flexible)
  } else {
    for (const item of value) writeScalar(w, f.type.arrayOf, item, flexible, f.name)
  }
}

function isDefault(value: unknown, def: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0 && Array.isArray(def)
  if (Buffer.isBuffer(value)) return Buffer.isBuffer(def) && value.equals(def)
  return value === def
}

// Missing values encode as the field's default, so handlers only fill what they know; a null in a
// version where the field is not nullable encodes as the empty value (Kafka clients read both the same).
// Tagged fields are written, sorted by tag, only when they differ from their default.
export function encodeFields(w: Writer, fields: FieldDef[], msg: Message, version: number, flexible: boolean): void {
  let tagged: [number, Buffer][] | undefined
  for (const f of fields) {
    if (version < f.min || version > f.max) continue
    let value = msg[f.name]
    if (value === undefined) value = f.default
    if (f.tag !== undefined) {
      if (!flexible || isDefault(value, f.default)) continue
      const inner = new Writer()
      writeValue(inner, f, value, version, flexible)
      ;(tagged ??= []).push([f.tag, Buffer.concat(inner.finish())])
      continue
    }
    writeValue(w, f, value, version, flexible)
  }
  if (!flexible) return
  if (tagged === undefined) return w.uvarint(0)
  tagged.sort((a, b) => a[0] - b[0])
  w.uvarint(tagged.length)
  for (const [tag, body] of tagged) {
    w.uvarint(tag)
    w.uvarint(body.length)
    w.raw(body)
  }
}
