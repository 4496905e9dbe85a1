import { type Action } from './action.ts'
import { connectionField, prepareSegment, SEGMENT_ID_TAGS, streamingFormats } from './segment-mapping.ts'

export const segmentIdentify: Action = {
  name: 'segment_identify',
  label: 'Segment Identify',
  description: 'Add traits via identify to your Segment users.',
  destination: 'segment',
  integration: 'Segment',
  requiredFields: [{ any_tag: SEGMENT_ID_TAGS }],
  form: [connectionField],
  supportedFormats: streamingFormats,
  prepare: (fields, context) => prepareSegment('identify', fields, context),
}
