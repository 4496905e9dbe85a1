import { allFields, type JsonDetailField } from '../looker/json-detail-reader.ts'
import { type Action, type MappedMessage } from './action.ts'
import { cellValue, fieldPicker, identityValue, isPivotedCell, isRow, MISSING, setOwn } from './cell-value.ts'
import { connectionField, streamingFormats } from './segment-mapping.ts'

// No tags: the join-key column is named in the form by its label (as Looker shows it, e.g. "Users Email");
// a field's name and short label are accepted too, since observed payloads vary.
// user → identify { userId: join key, traits }; account → group { groupId: account id, traits } with
// anonymousId "heap-account:<id>" (the Segment Spec, and so the schema, wants a user identity on a group);
// integrations.Heap = { connection, propertyType, joinKey }.
// Properties are keyed by field label. Heap takes numbers and strings of at most 1024 characters:
// numbers stay numbers (minus signs kept), booleans become "true"/"false", strings are cut to 1024
// characters, null and missing cells are left out (Heap has no null), 0 is kept. A pivoted column becomes
// one property per pivot key, named "<label> | <pivot key>".

const MAX_VALUE_CHARS = 1024

function heapValue(value: unknown): string | number | undefined {
  if (value === null || value === undefined || value === MISSING) return undefined
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value === 'string') return value.length > MAX_VALUE_CHARS ? value.slice(0, MAX_VALUE_CHARS) : value
  if (typeof value === 'boolean') return String(value)
  const text = JSON.stringify(value)
  return text.length > MAX_VALUE_CHARS ? text.slice(0, MAX_VALUE_CHARS) : text
}

function labelOf(field: JsonDetailField): string {
  return typeof field.label === 'string' && field.label !== '' ? field.label : field.name
}

export const heap: Action = {
  name: 'heap',
  label: 'Heap',
  description: 'Add user or account properties in Heap, matched by a join-key column.',
  destination: 'heap',
  integration: 'Heap',
  requiredFields: [],
  form: [
    connectionField,
    {
      name: 'property_type',
      label: 'Property Type',
      type: 'select',
      default: 'user',
      required: true,
      options: [
        { name: 'user', label: 'User' },
        { name: 'account', label: 'Account' },
      ],
    },
    {
      name: 'heap_field',
      label: 'Join Key Column',
      description: 'Label of the column matching the user join key or account ID property in Heap.',
      type: 'string',
      required: true,
    },
  ],
  supportedFormats: streamingFormats,
  validateForm(form) {
    const errors: Record<string, string> = {}
    if (form.property_type !== 'user' && form.property_type !== 'account') {
      errors.property_type = 'Property Type must be user or account.'
    }
    if ((form.heap_field ?? '').trim() === '') errors.heap_field = 'Join Key Column is required.'
    return errors
  },
  prepare(fields, context) {
    const list = allFields(fields)
    const wanted = (context.form.heap_field ?? '').trim()
    const joinField =
      list.find((f) => f.label === wanted) ??
      list.find((f) => f.name === wanted) ??
      list.find((f) => f.label_short === wanted)
    if (!joinField) return { ok: false, reason: `Heap field (${wanted}) is missing in the query result.` }
    const isAccount = context.form.property_type === 'account'
    const propertyFields = list.filter((f) => f !== joinField).map((field) => ({ field, label: labelOf(field) }))
    const pickPropertyFields = fieldPicker(propertyFields, (p) => p.field.name)
    const integrations = {
      All: false,
      Heap: {
        connection: context.connection,
        propertyType: isAccount ? 'account' : 'user',
        joinKey: labelOf(joinField),
      },
    }
    return {
      ok: true,
      mapRow(row) {
        if (!isRow(row)) return { ok: false, reason: 'row is not a JSON object' }
        const key = identityValue(cellValue(row, joinField))
        if (key === undefined) return { ok: false, reason: `join key ${labelOf(joinField)} is empty` }
        if (typeof key === 'object') return { ok: false, reason: `join key ${labelOf(joinField)} holds ${key.bad}` }
        const traits: Record<string, string | number> = {}
        for (const { field, label } of pickPropertyFields(row)) {
          const value = cellValue(row, field)
          if (isPivotedCell(row[field.name]) && value !== null && typeof value === 'object') {
            for (const [pivotKey, inner] of Object.entries(value)) {
              const v = heapValue(inner)
              if (v !== undefined) setOwn(traits, `${label} | ${pivotKey}`, v)
            }
            continue
          }
          const v = heapValue(value)
          if (v !== undefined) setOwn(traits, label, v)
        }
        const message: MappedMessage = isAccount
          ? { type: 'group', groupId: key, anonymousId: `heap-account:${key}`, traits, integrations }
          : { type: 'identify', userId: key, traits, integrations }
        return { ok: true, messages: [message] }
      },
    }
  },
}
