import { allFields } from '../looker/json-detail-reader.ts'
import { type Action, type MappedMessage } from './action.ts'
import { cellValue, fieldPicker, hasTag, identityValue, isPivotedCell, isRow, MISSING, setOwn } from './cell-value.ts'
import { connectionField, streamingFormats } from './segment-mapping.ts'

// Tags: `braze_id` marks the identifier column; its value is sent under the key chosen in the form
// (external_id or braze_id). `braze[<attr>]` makes a column the attribute <attr>; untagged columns are
// ignored. The message is an identify with userId = the identifier value and the attributes as traits;
// `integrations.Braze` carries { connection, identifierKey, exportLabel, updateExistingOnly, nulls }, from
// which the Braze service writes `_update_existing_only` and `looker_export: {add: [exportLabel]}`, and
// decides whether a null cell leaves the attribute alone (`skip`, the default) or removes it (`send`).
// Unlike the reference: the lite stream on Looker ≥ 6.2, no 100,000-row cap, profile creation as a form
// choice, and a pivoted query refused up front (an attribute holds one value per user, a pivot many).

const PIVOT_REASON =
  'Braze does not support pivoted queries: a Braze attribute holds one value per user, a pivoted column holds ' +
  'one per pivot value. Remove the pivot from the Look and send again.'

const ATTRIBUTE_TAG = /^braze\[(.+)\]$/

export const braze: Action = {
  name: 'braze',
  label: 'Braze',
  description:
    'Update the attributes of Braze users (existing ones only, unless the form allows creating them) and flag them with an export label.',
  destination: 'braze',
  integration: 'Braze',
  requiredFields: [{ tag: 'braze_id' }],
  form: [
    connectionField,
    {
      name: 'braze_key',
      label: 'Unique Key',
      description: 'The Braze key the braze_id-tagged column holds.',
      type: 'select',
      default: 'external_id',
      required: true,
      options: [
        { name: 'external_id', label: 'external_id' },
        { name: 'braze_id', label: 'braze_id' },
      ],
    },
    {
      name: 'braze_segment',
      label: 'Export Label',
      description: 'Added to the looker_export attribute of every exported user.',
      type: 'string',
      default: 'LOOKER_EXPORT',
      required: false,
    },
    {
      name: 'braze_update_existing_only',
      label: 'Update Existing Users Only',
      description: 'yes: rows whose user does not exist in Braze are ignored there; no: Braze creates those users.',
      type: 'select',
      default: 'yes',
      required: true,
      options: [
        { name: 'yes', label: 'Yes' },
        { name: 'no', label: 'No (create new users)' },
      ],
    },
    {
      name: 'braze_null_values',
      label: 'Empty Values',
      description: 'What a null cell does to the Braze attribute.',
      type: 'select',
      default: 'skip',
      required: true,
      options: [
        { name: 'skip', label: 'Leave the attribute unchanged' },
        { name: 'send', label: 'Remove the attribute in Braze' },
      ],
    },
  ],
  supportedFormats: streamingFormats,
  validateForm(form): Record<string, string> {
    const errors: Record<string, string> = {}
    const key = form.braze_key
    if (key !== 'external_id' && key !== 'braze_id') errors.braze_key = 'Unique Key must be external_id or braze_id.'
    const label = form.braze_segment
    if (label !== undefined && label.length > 255) {
      errors.braze_segment = 'Export Label must be at most 255 characters (a Braze array value).'
    }
    const updateOnly = form.braze_update_existing_only
    if (updateOnly !== undefined && updateOnly !== 'yes' && updateOnly !== 'no') {
      errors.braze_update_existing_only = 'Update Existing Users Only must be yes or no.'
    }
    const nulls = form.braze_null_values
    if (nulls !== undefined && nulls !== 'skip' && nulls !== 'send') {
      errors.braze_null_values = 'Empty Values must be skip or send.'
    }
    return errors
  },
  prepare(fields, context) {
    if (Array.isArray(fields.pivots) && fields.pivots.length > 0) return { ok: false, reason: PIVOT_REASON }
    const list = allFields(fields)
    const idField = list.find((f) => hasTag(f, 'braze_id'))
    if (!idField) return { ok: false, reason: 'Query requires a field tagged braze_id.' }
    const attributes: { name: string; field: (typeof list)[number] }[] = []
    // Two columns tagged with the same attribute would overwrite each other row by row (which one wins depending on
    // which cells a row has): refused up front, as Heap and Recurly Engage refuse two columns becoming one property.
    const columnOf = new Map<string, string>()
    for (const field of list) {
      for (const tag of field.tags ?? []) {
        const name = ATTRIBUTE_TAG.exec(tag)?.[1]
        if (name === undefined) continue
        const earlier = columnOf.get(name)
        if (earlier === field.name) continue // the same tag twice on one column
        if (earlier !== undefined) {
          return {
            ok: false,
            reason: `Columns ${earlier} and ${field.name} are both tagged braze[${name}]: a Braze attribute holds one value per user; remove one of the tags.`,
          }
        }
        columnOf.set(name, field.name)
        attributes.push({ name, field })
      }
    }
    const pickAttributes = fieldPicker(attributes, (a) => a.field.name)
    const integrations = {
      All: false,
      Braze: {
        connection: context.connection,
        identifierKey: context.form.braze_key,
        exportLabel: context.form.braze_segment,
        updateExistingOnly: context.form.braze_update_existing_only !== 'no',
        nulls: context.form.braze_null_values === 'send' ? 'send' : 'skip',
      },
    }
    return {
      ok: true,
      mapRow(row) {
        if (!isRow(row)) return { ok: false, reason: 'row is not a JSON object' }
        const id = identityValue(cellValue(row, idField))
        if (id === undefined) return { ok: false, reason: `row has no braze_id value (field ${idField.name})` }
        if (typeof id === 'object') return { ok: false, reason: `braze_id field ${idField.name} holds ${id.bad}` }
        const traits: Record<string, unknown> = {}
        for (const { name, field } of pickAttributes(row)) {
          // Pivots show in the fields; a pivoted cell without them is refused the same way, row by row.
          if (isPivotedCell(row[field.name]) && Object.hasOwn(row, field.name))
            return { ok: false, reason: `field ${field.name} is pivoted: ${PIVOT_REASON}` }
          const value = cellValue(row, field)
          if (value !== MISSING) setOwn(traits, name, value)
        }
        const message: MappedMessage = { type: 'identify', userId: id, traits, integrations }
        return { ok: true, messages: [message] }
      },
    }
  },
}
