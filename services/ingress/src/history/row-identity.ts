import { cellValue, identityValue, isRow } from '../actions/cell-value.ts'
import { allFields, type JsonDetailFields } from '../looker/json-detail-reader.ts'

// The values that identify a rejected row on the send history page: the cells of fields tagged as a row
// identity by some action (Segment, Braze, mParticle, Recurly Engage). Only these, never the other columns,
// and never credentials (actions have no credential columns: credentials live in the destination services).
export const IDENTITY_TAGS: readonly string[] = [
  'user_id',
  'email',
  'segment_anonymous_id',
  'segment_group_id',
  'braze_id',
  'mp_customer_id',
  'mp_email',
  'mp_other',
  'mp_other2',
  'mp_other3',
  'mp_other4',
]
const MAX_IDENTITY_FIELDS = 4

export type RowIdentity = (cells: unknown) => Record<string, string> | undefined

export function rowIdentityReader(fields: JsonDetailFields): RowIdentity {
  const identityFields = allFields(fields)
    .filter((field) => Array.isArray(field.tags) && field.tags.some((tag) => IDENTITY_TAGS.includes(tag)))
    .slice(0, MAX_IDENTITY_FIELDS)
  return (cells) => {
    if (identityFields.length === 0 || !isRow(cells)) return undefined
    const identity: Record<string, string> = {}
    let found = false
    for (const field of identityFields) {
      const value = identityValue(cellValue(cells, field))
      if (typeof value !== 'string') continue
      identity[field.name] = value
      found = true
    }
    return found ? identity : undefined
  }
}
