import { type Action } from './action.ts'
import { connectionField, prepareSegment, SEGMENT_ID_TAGS, streamingFormats } from './segment-mapping.ts'

export const segmentGroup: Action = {
  name: 'segment_group',
  label: 'Segment Group',
  description: 'Add traits and users to your Segment groups.',
  destination: 'segment',
  integration: 'Segment',
  // Two entries = two distinct fields: the reference's single {tag, any_tag} entry let any_tag supersede
  // the group-id requirement.
  requiredFields: [{ tag: 'segment_group_id' }, { any_tag: SEGMENT_ID_TAGS }],
  form: [connectionField],
  supportedFormats: streamingFormats,
  prepare: (fields, context) => prepareSegment('group', fields, context),
}
