// Turns a message's traits into properties as Heap takes them: flat, each a number or a string under 1,024
// characters. Nested objects become dotted names (`address.city`); arrays of plain values are joined with
// `||` (what Heap itself does with an array), arrays holding objects are flattened by position (`items.0.sku`);
// booleans become "true"/"false"; null means "no value" and is left out (Heap has no null and no unset).
// A property named `email` in any casing is sent as `email`, so Heap's built-in Email property fills; user
// properties may not be named any casing of `id` (Heap reserves it). Reasons name properties, never values.

export type HeapValue = string | number
export type HeapProperties = Record<string, HeapValue>

/** What to do with a string of 1,024 characters or more: refuse the row, or cut the value to 1,023. */
export type LongValues = 'reject' | 'truncate'

/** Heap takes strings *under* this many characters. */
export const MAX_VALUE_CHARS = 1024
const MAX_DEPTH = 10

export type PropertiesResult = { ok: true; properties: HeapProperties } | { ok: false; reason: string }

export interface PropertyRules {
  longValues: LongValues
  /** User properties: `id` in any casing is reserved, `email` in any casing fills the built-in Email. */
  kind: 'user' | 'account'
}

class PropertyProblem extends Error {}

function problem(reason: string): never {
  throw new PropertyProblem(reason)
}

/** Cuts to at most `MAX_VALUE_CHARS - 1` UTF-16 units without splitting a surrogate pair. */
export function truncateValue(value: string): string {
  let end = MAX_VALUE_CHARS - 1
  const last = value.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return value.slice(0, end)
}

function isPlainValue(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
}

export function toHeapProperties(traits: Readonly<Record<string, unknown>> | undefined, rules: PropertyRules) {
  if (traits === undefined) return { ok: true, properties: {} } satisfies PropertiesResult
  const properties: HeapProperties = {}
  // The name each property came from, to explain a clash ("Email" and "email").
  const sources = new Map<string, string>()

  const put = (source: string, value: HeapValue): void => {
    if (source === '') problem('a property has an empty name')
    let name = source
    const lower = source.toLowerCase()
    if (rules.kind === 'user') {
      if (lower === 'id') problem(`property "${source}" is reserved by Heap (no user property may be named id)`)
      if (lower === 'email') name = 'email'
    }
    const earlier = sources.get(name)
    if (earlier !== undefined) problem(`properties "${earlier}" and "${source}" both become Heap property "${name}"`)
    if (typeof value === 'string' && value.length >= MAX_VALUE_CHARS) {
      if (rules.longValues === 'reject') {
        problem(
          `property "${source}" is ${value.length} characters; Heap takes fewer than ${MAX_VALUE_CHARS} (or send with long values truncated)`,
        )
      }
      value = truncateValue(value)
    }
    sources.set(name, source)
    properties[name] = value
  }

  const walk = (prefix: string, value: unknown, depth: number): void => {
    if (value === null || value === undefined) return
    if (typeof value === 'string') return put(prefix, value)
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) problem(`property "${prefix}" is not a finite number`)
      return put(prefix, value)
    }
    if (typeof value === 'boolean') return put(prefix, value ? 'true' : 'false')
    if (depth >= MAX_DEPTH) problem(`property "${prefix}" is nested more than ${MAX_DEPTH} levels deep`)
    if (Array.isArray(value)) {
      if (value.every(isPlainValue)) {
        return put(prefix, value.map((v: unknown) => (v === null ? '' : String(v as string))).join('||'))
      }
      value.forEach((element, index) => walk(`${prefix}.${index}`, element, depth + 1))
      return
    }
    if (typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) walk(prefix === '' ? key : `${prefix}.${key}`, inner, depth + 1)
      return
    }
    problem(`property "${prefix}" holds a ${typeof value}, not a string or number`)
  }

  try {
    for (const [key, value] of Object.entries(traits)) {
      if (key === '') problem('a property has an empty name')
      walk(key, value, 0)
    }
  } catch (err) {
    if (err instanceof PropertyProblem) return { ok: false, reason: err.message } satisfies PropertiesResult
    throw err
  }
  return { ok: true, properties } satisfies PropertiesResult
}
