import { type JsonDetailField } from '../looker/json-detail-reader.ts'

// Cells are `{value, rendered?, links?, ...}`. A pivoted field's cell is nested one level by pivot key:
// `{"2024-01": {value: 1}, "2024-02": {value: 2}}`. lookstream's one treatment of pivots: an object keyed
// by pivot key whose values are the plain cell values, `{"2024-01": 1, "2024-02": 2}` (the reference sent
// arrays of one-key objects, which Segment does not support). 0, false and null are kept as values.

export const MISSING = Symbol('missing cell')

export function isPivotedCell(cell: unknown): cell is Record<string, unknown> {
  return cell !== null && typeof cell === 'object' && !Array.isArray(cell) && !('value' in cell)
}

export function cellValue(row: Record<string, unknown>, field: JsonDetailField): unknown {
  const cell = row[field.name]
  if (cell === undefined) return MISSING
  if (!isPivotedCell(cell)) {
    return cell !== null && typeof cell === 'object' && !Array.isArray(cell) ? (cell as { value: unknown }).value : cell
  }
  const pivoted: Record<string, unknown> = {}
  for (const [pivotKey, inner] of Object.entries(cell)) {
    pivoted[pivotKey] = inner !== null && typeof inner === 'object' && 'value' in inner ? inner.value : inner
  }
  return pivoted
}

/** An identity value as a string; numbers are written in decimal. Empty, null and missing give undefined. */
export function identityValue(value: unknown): string | undefined | { bad: string } {
  if (value === MISSING || value === null || value === undefined) return undefined
  if (typeof value === 'string') return value.trim() === '' ? undefined : value
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  if (typeof value === 'bigint') return value.toString()
  return { bad: `${Array.isArray(value) ? 'array' : typeof value}` }
}

export function isRow(row: unknown): row is Record<string, unknown> {
  return row !== null && typeof row === 'object' && !Array.isArray(row)
}

export function hasTag(field: JsonDetailField, tag: string): boolean {
  return Array.isArray(field.tags) && field.tags.includes(tag)
}
