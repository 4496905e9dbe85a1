import { createHash } from 'node:crypto'

/**
 * JSON with object keys sorted (by UTF-16 code unit, like Array.prototype.sort) at every depth, so two
 * values that are equal as JSON serialize to the same string whatever order their keys were built in.
 * Follows JSON.stringify otherwise: undefined and functions in objects are skipped, in arrays become null.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'null'
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value === null || typeof value !== 'object') return value
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value
  const sorted: Record<string, unknown> = {}
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Record<string, unknown>)[key])
  return sorted
}

/** SHA-256 (hex) of the canonical JSON of `values`: a compact, order-insensitive fingerprint of a row. */
export function contentHash(values: unknown): string {
  return createHash('sha256').update(canonicalJson(values)).digest('hex')
}
