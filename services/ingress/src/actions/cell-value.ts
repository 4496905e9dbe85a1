import { kindOf, type JsonDetailField } from '../looker/json-detail-reader.ts'

// Cells are `{value, rendered?, links?, ...}`. A pivoted field's cell is nested one level by pivot key:
// `{"2024-01": {value: 1}, "2024-02": {value: 2}}`. lookstream's one treatment of pivots: an object keyed
// by pivot key whose values are the plain cell values, `{"2024-01": 1, "2024-02": 2}` (the reference sent
// arrays of one-key objects, which Segment does not support). 0, false and null are kept as values.
// Names that are also Object.prototype's (`__proto__`) are set as own properties (setOwn), never dropped.

export const MISSING = Symbol('missing cell')

export function isPivotedCell(cell: unknown): cell is Record<string, unknown> {
  if (cell === null || typeof cell !== 'object' || Array.isArray(cell)) return false
  if (!('value' in cell)) return true
  // The usual cell: `value` is a scalar.
  const value = cell.value
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  // A pivot one of whose keys is "value" (a status pivoted on, say): two or more members, every one a cell of its
  // own. (A lone "value" holding an object stays a plain cell: that reading keeps all of the object.)
  let members = 0
  for (const key in cell) {
    const inner = (cell as Record<string, unknown>)[key]
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner) || !('value' in inner)) return false
    members++
  }
  return members >= 2
}

export function cellValue(row: Record<string, unknown>, field: JsonDetailField): unknown {
  const cell = row[field.name]
  // A field named like an Object.prototype member (constructor, __proto__...) that the row lacks reads the
  // inherited member: a function or Object.prototype, neither of which JSON.parse ever makes.
  if (cell === undefined || typeof cell === 'function' || cell === Object.prototype) return MISSING
  if (!isPivotedCell(cell)) {
    return cell !== null && typeof cell === 'object' && !Array.isArray(cell) ? (cell as { value: unknown }).value : cell
  }
  const pivoted: Record<string, unknown> = {}
  for (const pivotKey in cell) {
    const inner = cell[pivotKey]
    setOwn(pivoted, pivotKey, inner !== null && typeof inner === 'object' && 'value' in inner ? inner.value : inner)
  }
  return pivoted
}

/** `target[key] = value`, except that `__proto__` becomes an own property instead of replacing the prototype. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  } else target[key] = value
}

/**
 * An identity value as a string. Numbers are written as the decimal JSON would write them, integers without an
 * exponent (1e21 → "1000000000000000000000"); a number a double cannot hold arrives from the reader as its exact
 * source text already (exact-json.ts). Empty, null and missing give undefined.
 */
export function identityValue(value: unknown): string | undefined | { bad: string } {
  if (value === MISSING || value === null || value === undefined) return undefined
  if (typeof value === 'string') return value.trim() === '' ? undefined : value
  if (typeof value === 'number' && Number.isFinite(value)) {
    const text = String(value)
    return Number.isInteger(value) && Math.abs(value) >= 1e21 ? plainInteger(text) : text
  }
  return { bad: kindOf(value) }
}

/** "1.2345e+25" → "12345000000000000000000000": the same decimal value without an exponent. */
function plainInteger(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?e\+(\d+)$/.exec(text)
  if (match === null) return text
  const fraction = match[3] ?? ''
  return `${match[1]}${match[2]}${fraction}${'0'.repeat(Number(match[4]) - fraction.length)}`
}

export function isRow(row: unknown): row is Record<string, unknown> {
  return row !== null && typeof row === 'object' && !Array.isArray(row)
}

export function hasTag(field: JsonDetailField, tag: string): boolean {
  return Array.isArray(field.tags) && field.tags.includes(tag)
}

/**
 * The fields of `all` whose cells a row has, in `all`'s order: `all` itself when the row has about as many cells
 * as there are fields (the usual row), otherwise found from the row's own keys, so a sparse row of a wide Look
 * costs what its cells cost, not what the field list costs.
 */
export function fieldPicker<T>(
  all: readonly T[],
  nameOf: (item: T) => string,
): (row: Record<string, unknown>) => readonly T[] {
  if (all.length < 32) return () => all
  const enough = all.length >>> 2
  let byName: Map<string, number[]> | undefined
  return (row) => {
    let cells = 0
    for (const _ in row) if (++cells > enough) return all
    if (byName === undefined) {
      byName = new Map()
      all.forEach((item, index) => {
        const name = nameOf(item)
        const indexes = byName!.get(name)
        if (indexes === undefined) byName!.set(name, [index])
        else indexes.push(index)
      })
    }
    const picked: number[] = []
    for (const key in row) {
      const indexes = byName.get(key)
      if (indexes !== undefined) for (const index of indexes) picked.push(index)
    }
    picked.sort((a, b) => a - b)
    return picked.map((index) => all[index]!)
  }
}
