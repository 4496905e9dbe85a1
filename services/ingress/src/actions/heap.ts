import { allFields, type JsonDetailField } from '../looker/json-detail-reader.ts'
import { type Action, type MappedMessage } from './action.ts'
import { cellValue, fieldPicker, identityValue, isPivotedCell, isRow, MISSING, setOwn } from './cell-value.ts'
import { connectionField, streamingFormats } from './segment-mapping.ts'

// No tags: the join-key column is named in the form by its label (as Looker shows it, e.g. "Users Email");
// a field's name and short label are accepted too, since observed payloads vary.
// user → identify { userId: join key, traits }; account → group { groupId: account id, traits } with
// anonymousId "heap-account:<id>" (the Segment Spec, and so the schema, wants a user identity on a group);
// integrations.Heap = { connection, propertyType, joinKey, envId?, longValues? }.
// Properties are keyed by field label; a pivoted column becomes one property per pivot key, named
// "<label> | <pivot key>". Values travel as Looker gives them (null and missing cells left out: Heap has no null);
// the heap service makes them what Heap takes (services/heap/README.md). Two rules are checked here too, so Looker's
// answer names them: a column the service would have to refuse for every row fails the send before anything is
// produced (a property named any casing of "id" on users, two columns becoming one property), and a row with a
// string of 1,024 characters or more is rejected with its row number unless the send truncates long values.
// The Environment ID is optional: empty means the connection's own environment; the heap service checks that a
// named one is allowed on the connection (services/heap/README.md, "Environments").

const MAX_VALUE_CHARS = 1024

function labelOf(field: JsonDetailField): string {
  return typeof field.label === 'string' && field.label !== '' ? field.label : field.name
}

/** The Heap property name a label becomes (user properties: any casing of "email" fills Heap's Email). */
function propertyName(label: string, isAccount: boolean): string {
  return !isAccount && label.toLowerCase() === 'email' ? 'email' : label
}

function tooLong(value: unknown): number | undefined {
  return typeof value === 'string' && value.length >= MAX_VALUE_CHARS ? value.length : undefined
}

function longReason(label: string, length: number): string {
  return `column ${label} holds ${length} characters; Heap takes fewer than ${MAX_VALUE_CHARS} (or send with Long Values: truncate)`
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
      name: 'env_id',
      label: 'Environment ID',
      description:
        "Heap environment (app_id) to update; empty: the connection's own. A connection accepts only the environments its lookstream operator allowed.",
      type: 'string',
      required: false,
    },
    {
      name: 'heap_field',
      label: 'Join Key Column',
      description: 'Label of the column matching the user join key or account ID property in Heap.',
      type: 'string',
      required: true,
    },
    {
      name: 'long_values',
      label: 'Long Values',
      description: 'Heap takes strings under 1,024 characters: reject rows holding a longer one, or cut it to 1,023.',
      type: 'select',
      default: 'reject',
      required: true,
      options: [
        { name: 'reject', label: 'Reject the row' },
        { name: 'truncate', label: 'Truncate to 1,023 characters' },
      ],
    },
  ],
  supportedFormats: streamingFormats,
  validateForm(form) {
    const errors: Record<string, string> = {}
    if (form.property_type !== 'user' && form.property_type !== 'account') {
      errors.property_type = 'Property Type must be user or account.'
    }
    if ((form.heap_field ?? '').trim() === '') errors.heap_field = 'Join Key Column is required.'
    const envId = form.env_id ?? ''
    if (envId !== '' && !/^[0-9]{1,32}$/.test(envId)) {
      errors.env_id = `Heap environment ID is invalid: ${envId.slice(0, 40)} (digits only).`
    }
    if (form.long_values !== 'reject' && form.long_values !== 'truncate') {
      errors.long_values = 'Long Values must be reject or truncate.'
    }
    return errors
  },
  checkSettings(form, connection, settings) {
    const envId = form.env_id ?? ''
    const allowed = settings.environments
    const errors: Record<string, string> = {}
    if (envId === '' || !Array.isArray(allowed) || allowed.includes(envId)) return errors
    errors.env_id = `Heap environment ${envId} is not allowed on connection "${connection}" (allowed: ${allowed.join(', ')}).`
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
    const names = new Map<string, string>()
    for (const { label } of propertyFields) {
      if (!isAccount && label.toLowerCase() === 'id') {
        return {
          ok: false,
          reason: `Column "${label}" would become a Heap user property named "${label}", which Heap reserves (any casing of id): hide the column or change its label.`,
        }
      }
      const name = propertyName(label, isAccount)
      const earlier = names.get(name)
      if (earlier !== undefined) {
        return {
          ok: false,
          reason: `Columns "${earlier}" and "${label}" would both become Heap property "${name}": hide one or change its label.`,
        }
      }
      names.set(name, label)
    }
    const envId = context.form.env_id ?? ''
    const truncate = context.form.long_values === 'truncate'
    const pickPropertyFields = fieldPicker(propertyFields, (p) => p.field.name)
    const integrations = {
      All: false,
      Heap: {
        connection: context.connection,
        propertyType: isAccount ? 'account' : 'user',
        joinKey: labelOf(joinField),
        ...(envId !== '' ? { envId } : {}),
        ...(truncate ? { longValues: 'truncate' } : {}),
      },
    }
    return {
      ok: true,
      mapRow(row) {
        if (!isRow(row)) return { ok: false, reason: 'row is not a JSON object' }
        const key = identityValue(cellValue(row, joinField))
        if (key === undefined) return { ok: false, reason: `join key ${labelOf(joinField)} is empty` }
        if (typeof key === 'object') return { ok: false, reason: `join key ${labelOf(joinField)} holds ${key.bad}` }
        const traits: Record<string, unknown> = {}
        for (const { field, label } of pickPropertyFields(row)) {
          const value = cellValue(row, field)
          if (isPivotedCell(row[field.name]) && value !== null && typeof value === 'object') {
            for (const [pivotKey, inner] of Object.entries(value)) {
              if (inner === null || inner === undefined || inner === MISSING) continue
              const length = truncate ? undefined : tooLong(inner)
              if (length !== undefined) return { ok: false, reason: longReason(`${label} | ${pivotKey}`, length) }
              setOwn(traits, `${label} | ${pivotKey}`, inner)
            }
            continue
          }
          if (value === null || value === MISSING) continue
          const length = truncate ? undefined : tooLong(value)
          if (length !== undefined) return { ok: false, reason: longReason(label, length) }
          setOwn(traits, label, value)
        }
        const message: MappedMessage = isAccount
          ? { type: 'group', groupId: key, anonymousId: `heap-account:${key}`, traits, integrations }
          : { type: 'identify', userId: key, traits, integrations }
        return { ok: true, messages: [message] }
      },
    }
  },
}
