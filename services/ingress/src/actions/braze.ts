import { allFields } from '../looker/json-detail-reader.ts'
import { type Action, type MappedMessage } from './action.ts'
import { cellValue, fieldPicker, hasTag, identityValue, isRow, MISSING, setOwn } from './cell-value.ts'
import { connectionField, streamingFormats } from './segment-mapping.ts'

// Tags: `braze_id` marks the identifier column; its value is sent under the key chosen in the form
// (external_id or braze_id). `braze[<attr>]` makes a column the attribute <attr>; untagged columns are
// ignored. The message is an identify with userId = the identifier value and the attributes as traits;
// `integrations.Braze` carries { connection, identifierKey, exportLabel, updateExistingOnly: true }, from
// which the Braze service writes `_update_existing_only` and `looker_export: {add: [exportLabel]}`.
// Unlike the reference: the lite stream on Looker ≥ 6.2 and no 100,000-row cap.

const ATTRIBUTE_TAG = /^braze\[(.+)\]$/

export const braze: Action = {
  name: 'braze',
  label: 'Braze',
  description: 'Update attributes of existing Braze users and flag them with an export label.',
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
  ],
  supportedFormats: streamingFormats,
  validateForm(form): Record<string, string> {
    const key = form.braze_key
    return key === 'external_id' || key === 'braze_id'
      ? {}
      : { braze_key: 'Unique Key must be external_id or braze_id.' }
  },
  prepare(fields, context) {
    const list = allFields(fields)
    const idField = list.find((f) => hasTag(f, 'braze_id'))
    if (!idField) return { ok: false, reason: 'Query requires a field tagged braze_id.' }
    const attributes: { name: string; field: (typeof list)[number] }[] = []
    for (const field of list) {
      for (const tag of field.tags ?? []) {
        const name = ATTRIBUTE_TAG.exec(tag)?.[1]
        if (name !== undefined) attributes.push({ name, field })
      }
    }
    const pickAttributes = fieldPicker(attributes, (a) => a.field.name)
    const integrations = {
      All: false,
      Braze: {
        connection: context.connection,
        identifierKey: context.form.braze_key,
        exportLabel: context.form.braze_segment,
        updateExistingOnly: true,
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
          const value = cellValue(row, field)
          if (value !== MISSING) setOwn(traits, name, value)
        }
        const message: MappedMessage = { type: 'identify', userId: id, traits, integrations }
        return { ok: true, messages: [message] }
      },
    }
  },
}
