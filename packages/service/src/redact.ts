import { isSecretName } from '@lookstream/config'

export const REDACTED = '[redacted]'
const MAX_DEPTH = 8

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/**
 * Returns `value` with every property whose name suggests a secret replaced by "[redacted]", at any
 * depth of plain objects and arrays. Copies only what changes, so clean log objects cost a walk and
 * no allocation. Class instances (requests, errors) are left to their serializers.
 */
export function redactDeep<T>(value: T, depth = 0): T {
  if (depth > MAX_DEPTH) return value
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined
    value.forEach((item, i) => {
      const next = redactDeep(item as unknown, depth + 1)
      if (next !== item) (copy ??= [...(value as unknown[])])[i] = next
    })
    return (copy ?? value) as T
  }
  if (!isPlainObject(value)) return value
  let copy: Record<string, unknown> | undefined
  for (const [key, item] of Object.entries(value)) {
    const next = isSecretName(key) && item !== undefined && item !== null ? REDACTED : redactDeep(item, depth + 1)
    if (next !== item) (copy ??= { ...value })[key] = next
  }
  return (copy ?? value) as T
}

/** Header values of sensitive headers (authorization, cookie, x-api-key, ...) replaced. */
export function redactHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(headers)) out[name] = isSecretName(name) ? REDACTED : value
  return out
}

/** Query parameters whose names suggest a secret (?token=, ?api_key=) replaced in a request URL. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = new URLSearchParams(url.slice(q + 1))
  let changed = false
  for (const name of new Set(params.keys())) {
    if (isSecretName(name)) {
      params.set(name, REDACTED)
      changed = true
    }
  }
  return changed ? `${url.slice(0, q)}?${params.toString()}` : url
}
