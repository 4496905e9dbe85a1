import { allFields } from '../looker/json-detail-reader.ts'
import { type Action } from './action.ts'
import { cellValue, hasTag, identityValue, isRow, MISSING, setOwn } from './cell-value.ts'
import { connectionField, streamingFormats } from './segment-mapping.ts'

// Recurly Engage imports a CSV whose first column is user_id and whose other columns become traits. Each
// row is an identify { userId, traits } with traits in field order keyed by field name; the Recurly Engage
// service writes one CSV per send (send id header) with user_id first and these keys as the other columns.

export const recurlyEngage: Action = {
  name: 'recurly_engage',
  label: 'Recurly Engage',
  description: 'Send user traits to Recurly Engage (a CSV per send, user_id first).',
  destination: 'recurly-engage',
  integration: 'Recurly Engage',
  requiredFields: [{ tag: 'user_id' }],
  form: [connectionField],
  supportedFormats: streamingFormats,
  prepare(fields, context) {
    const list = allFields(fields)
    const idField = list.find((f) => hasTag(f, 'user_id'))
    if (!idField) return { ok: false, reason: 'Query requires a field tagged user_id.' }
    const traitFields = list.filter((f) => f !== idField)
    const integrations = { All: false, 'Recurly Engage': { connection: context.connection } }
    return {
      ok: true,
      mapRow(row) {
        if (!isRow(row)) return { ok: false, reason: 'row is not a JSON object' }
        const userId = identityValue(cellValue(row, idField))
        if (userId === undefined) return { ok: false, reason: `row has no user_id value (field ${idField.name})` }
        if (typeof userId === 'object')
          return { ok: false, reason: `user_id field ${idField.name} holds ${userId.bad}` }
        const traits: Record<string, unknown> = {}
        for (const field of traitFields) {
          const value = cellValue(row, field)
          setOwn(traits, field.name, value === MISSING ? null : value)
        }
        return { ok: true, messages: [{ type: 'identify', userId, traits, integrations }] }
      },
    }
  },
}
