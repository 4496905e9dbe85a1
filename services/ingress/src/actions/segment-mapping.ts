import { allFields } from '../looker/json-detail-reader.ts'
import { isAtLeast, type LookerVersion } from '../looker/looker-version.ts'
import {
  type FormField,
  type JsonDetailField,
  type JsonDetailFields,
  type MappedMessage,
  type PrepareResult,
  type SendContext,
} from './action.ts'
import { anonymousIdForEmail } from './anonymous-id.ts'
import { cellValue, fieldPicker, hasTag, identityValue, isRow, MISSING, setOwn } from './cell-value.ts'

// Shared by segment_identify, segment_track and segment_group. Tag semantics of the reference actions,
// minus their bugs:
// - userId comes only from a `user_id` field (the reference also took it from `segment_anonymous_id`);
// - anonymousId comes from `segment_anonymous_id`; a row with only an email gets a deterministic
//   anonymousId derived from it (never a random one); a row with none of the three is rejected;
// - traits (identify, group) / properties (track) are every other visible field, keyed by field name, with
//   0, false and null kept; the email is also `traits.email` (track: `context.traits.email`);
// - fields in vis_config.hidden_fields are left out.

export type SegmentKind = 'identify' | 'track' | 'group'

export const SEGMENT_ID_TAGS = ['email', 'user_id', 'segment_anonymous_id']

export const connectionField: FormField = {
  name: 'connection',
  label: 'Connection',
  description: 'Name of the destination connection configured in lookstream (credentials live there).',
  type: 'string',
  default: 'default',
  required: false,
}

export function streamingFormats(version: LookerVersion | undefined): string[] {
  return isAtLeast(version, [6, 2, 0]) ? ['json_detail_lite_stream'] : ['json_detail']
}

export function prepareSegment(kind: SegmentKind, fields: JsonDetailFields, context: SendContext): PrepareResult {
  const list = allFields(fields)
  const userIdField = list.find((f) => hasTag(f, 'user_id'))
  const anonymousIdField = list.find((f) => hasTag(f, 'segment_anonymous_id'))
  const emailField = list.find((f) => hasTag(f, 'email'))
  const groupIdField = list.find((f) => hasTag(f, 'segment_group_id'))
  if (!userIdField && !anonymousIdField && !emailField) {
    return { ok: false, reason: 'Query requires a field tagged email or user_id or segment_anonymous_id.' }
  }
  if (kind === 'group' && !groupIdField) return { ok: false, reason: 'Query requires a field tagged segment_group_id.' }
  const idTags = [...SEGMENT_ID_TAGS, 'segment_group_id']
  const dataFields = list.filter((f) => !idTags.some((tag) => hasTag(f, tag)) && !context.hiddenFields.has(f.name))
  const pickDataFields = fieldPicker(dataFields, (f) => f.name)
  const event = context.form.event ?? ''
  const integrations = { All: false, Segment: { connection: context.connection } }
  // The identity fields the Look has, in the order a row's are read; listed once per send.
  const idFields = (
    [
      ['user_id', userIdField],
      ['segment_anonymous_id', anonymousIdField],
      ['email', emailField],
      ['segment_group_id', groupIdField],
    ] as const
  ).filter((entry): entry is [(typeof entry)[0], JsonDetailField] => entry[1] !== undefined)

  return {
    ok: true,
    mapRow(row) {
      if (!isRow(row)) return { ok: false, reason: 'row is not a JSON object' }
      const ids: Record<string, string | undefined> = {}
      for (const [key, field] of idFields) {
        const value = identityValue(cellValue(row, field))
        if (typeof value === 'object') return { ok: false, reason: `${key} field ${field.name} holds ${value.bad}` }
        ids[key] = value
      }
      const email = ids.email
      const userId = ids.user_id
      const anonymousId =
        ids.segment_anonymous_id ?? (userId === undefined && email ? anonymousIdForEmail(email) : undefined)
      if (userId === undefined && anonymousId === undefined) {
        return { ok: false, reason: 'row has no user_id, segment_anonymous_id or email value' }
      }
      const data: Record<string, unknown> = {}
      for (const field of pickDataFields(row)) {
        const value = cellValue(row, field)
        if (value !== MISSING) setOwn(data, field.name, value)
      }
      const message: MappedMessage = { type: kind, integrations }
      if (userId !== undefined) message.userId = userId
      if (anonymousId !== undefined) message.anonymousId = anonymousId
      if (kind === 'group') {
        if (ids.segment_group_id === undefined) return { ok: false, reason: 'row has no segment_group_id value' }
        message.groupId = ids.segment_group_id
      }
      if (kind === 'track') {
        message.event = event
        message.properties = data
        if (email !== undefined) message.context = { traits: { email } }
      } else {
        if (email !== undefined) data.email = email
        message.traits = data
      }
      return { ok: true, messages: [message] }
    },
  }
}
