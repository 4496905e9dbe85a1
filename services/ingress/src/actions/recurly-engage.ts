import { allFields, type JsonDetailField } from '../looker/json-detail-reader.ts'
import { type Action } from './action.ts'
import { cellValue, hasTag, identityValue, isPivotedCell, isRow, MISSING, setOwn } from './cell-value.ts'
import { connectionField, streamingFormats } from './segment-mapping.ts'

// Recurly Engage imports a CSV whose first column is the customer id (`user_id`) and whose other columns become
// traits. The customer id is the field tagged `user_id` if there is one, else the Look's first column (what the
// Recurly Engage setup tells the admin to do). Each row is an identify { userId, traits } with the other columns
// as traits, in the Look's order, keyed by their label as Looker shows it; the Recurly Engage service writes one
// CSV per send with `user_id` first and these keys as the other columns.
//
// Refused before any row is read, with the reason: a Look without columns, two columns with the same label (or a
// column labelled `user_id` besides the customer id), a label that is a decimal integer (JSON objects list such
// keys first, so the column order could not be kept) and pivoted columns. Per row: no customer id, or a value
// that is not text, a number or a boolean (a CSV cell cannot hold it without changing it).

const ID_COLUMN = 'user_id'
const INTEGER_KEY = /^(0|[1-9]\d*)$/

function labelOf(field: JsonDetailField): string {
  return typeof field.label === 'string' && field.label !== '' ? field.label : field.name
}

function cellType(value: unknown): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'non-finite number'
  return Array.isArray(value) ? 'array' : typeof value
}

export const recurlyEngage: Action = {
  name: 'recurly_engage',
  label: 'Recurly Engage',
  description: 'Send user traits to Recurly Engage (a CSV per send, user_id first).',
  destination: 'recurly-engage',
  integration: 'Recurly Engage',
  requiredFields: [],
  form: [connectionField],
  supportedFormats: streamingFormats,
  prepare(fields, context) {
    const list = allFields(fields)
    if ((fields.pivots ?? []).length > 0) {
      return { ok: false, reason: 'Recurly Engage takes one value per cell: remove the pivot from the Look.' }
    }
    const idField = list.find((f) => hasTag(f, ID_COLUMN)) ?? list[0]
    if (idField === undefined) return { ok: false, reason: 'The Look has no columns.' }
    const traitFields = list.filter((f) => f !== idField)
    const labels = new Map<string, string>()
    for (const field of traitFields) {
      const label = labelOf(field)
      if (label === ID_COLUMN) {
        return {
          ok: false,
          reason: `Column ${field.name} is labelled "${ID_COLUMN}", the name of the customer id column (${idField.name}): rename it.`,
        }
      }
      if (INTEGER_KEY.test(label)) {
        return {
          ok: false,
          reason: `Column ${field.name} is labelled "${label}": give it a label that is not a number.`,
        }
      }
      const other = labels.get(label)
      if (other !== undefined) {
        return { ok: false, reason: `Columns ${other} and ${field.name} are both labelled "${label}": rename one.` }
      }
      labels.set(label, field.name)
    }
    const integrations = { All: false, 'Recurly Engage': { connection: context.connection } }
    return {
      ok: true,
      mapRow(row) {
        if (!isRow(row)) return { ok: false, reason: 'row is not a JSON object' }
        const idCell = row[idField.name]
        if (isPivotedCell(idCell)) return { ok: false, reason: `user_id field ${idField.name} is pivoted` }
        const userId = identityValue(cellValue(row, idField))
        if (userId === undefined) return { ok: false, reason: `row has no user_id value (field ${idField.name})` }
        if (typeof userId === 'object')
          return { ok: false, reason: `user_id field ${idField.name} holds ${userId.bad}` }
        const traits: Record<string, unknown> = {}
        for (const field of traitFields) {
          const value = cellValue(row, field)
          if (value === MISSING) {
            setOwn(traits, labelOf(field), null)
            continue
          }
          const bad = cellType(value)
          if (bad !== undefined) {
            return {
              ok: false,
              reason: `column ${field.name} holds a ${bad}; a CSV cell takes text, numbers and booleans`,
            }
          }
          setOwn(traits, labelOf(field), value)
        }
        return { ok: true, messages: [{ type: 'identify', userId, traits, integrations }] }
      },
    }
  },
}
