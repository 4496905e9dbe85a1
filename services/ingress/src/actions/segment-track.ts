import { type Action } from './action.ts'
import { connectionField, prepareSegment, SEGMENT_ID_TAGS, streamingFormats } from './segment-mapping.ts'

export const segmentTrack: Action = {
  name: 'segment_track',
  label: 'Segment Track',
  description: 'Send each row as a track event to Segment, with the columns as properties.',
  destination: 'segment',
  integration: 'Segment',
  requiredFields: [{ any_tag: SEGMENT_ID_TAGS }],
  form: [
    connectionField,
    {
      name: 'event',
      label: 'Event',
      description: "The name of the event you're tracking.",
      type: 'string',
      required: true,
    },
  ],
  supportedFormats: streamingFormats,
  validateForm: (form): Record<string, string> =>
    (form.event ?? '').trim() === '' ? { event: 'Event name is required.' } : {},
  prepare: (fields, context) => prepareSegment('track', fields, context),
}
