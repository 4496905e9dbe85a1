// Message layouts as data, in the shape of Apache Kafka's message JSON definitions: one table per API with
// version ranges per field. The generic codec (codec.ts) walks these tables; adding a version is editing a
// range or adding a field row, never new code.

export type ScalarType =
  'int8' | 'int16' | 'int32' | 'int64' | 'uint32' | 'float64' | 'bool' | 'string' | 'bytes' | 'records' | 'uuid'

export interface FieldDef {
  name: string
  type: ScalarType | FieldDef[] | { arrayOf: ScalarType }
  min: number
  max: number
  nullableMin: number
  default: unknown
  // Tagged field (flexible versions only): carried in the struct's tagged-field section under this tag,
  // and written only when it differs from its default.
  tag?: number
}

export interface ApiDef {
  key: number
  name: string
  // Range advertised in ApiVersions.
  minVersion: number
  maxVersion: number
  // First version using compact encodings and tagged fields (Kafka's "flexibleVersions").
  flexibleFrom: number
  request: FieldDef[]
  response: FieldDef[]
}

interface FieldOptions {
  // Versions in which the field exists: '0+', '3+', '0-4', '5'.
  v?: string
  // Versions in which the field may be null (absent: never).
  nullable?: string
  // Value for versions that lack the field, as in Kafka's JSON "default".
  default?: unknown
  // Kafka's "tag" with "taggedVersions".
  tag?: number
}

function parseRange(range: string): [number, number] {
  if (range.endsWith('+')) return [Number(range.slice(0, -1)), Number.MAX_SAFE_INTEGER]
  const [lo, hi] = range.split('-')
  return [Number(lo), Number(hi ?? lo)]
}

function defaultFor(type: FieldDef['type'], nullable: boolean): unknown {
  if (nullable) return null
  if (Array.isArray(type) || typeof type === 'object') return []
  switch (type) {
    case 'bool':
      return false
    case 'string':
      return ''
    case 'bytes':
      return Buffer.alloc(0)
    case 'records':
      return null
    case 'uuid':
      return Buffer.alloc(16)
    case 'int8':
    case 'int16':
    case 'int32':
    case 'int64':
    case 'uint32':
    case 'float64':
      return 0
  }
}

export function field(name: string, type: FieldDef['type'], opts: FieldOptions = {}): FieldDef {
  const [min, max] = parseRange(opts.v ?? '0+')
  const nullableMin = opts.nullable === undefined ? Number.MAX_SAFE_INTEGER : parseRange(opts.nullable)[0]
  return {
    name,
    type,
    min,
    max,
    nullableMin,
    default: opts.default !== undefined ? opts.default : defaultFor(type, opts.nullable !== undefined),
    ...(opts.tag !== undefined ? { tag: opts.tag } : {}),
  }
}

export const arrayOf = (type: ScalarType): { arrayOf: ScalarType } => ({ arrayOf: type })
