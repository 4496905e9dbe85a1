import { type TSchema } from 'typebox'
import { CanonicalMessage, GroupMessage, IdentifyMessage, TrackMessage } from './message-schema.ts'
import { SendEvent } from './send-event.ts'
import { TOPICS } from './topics.ts'

const SCHEMA_BASE = 'https://lookstream.dev/schemas/'

const documents: { file: string; title: string; description: string; schema: TSchema }[] = [
  {
    file: 'identify.v1.json',
    title: 'lookstream identify message v1',
    description: `Value of a record on ${TOPICS.identify}.`,
    schema: IdentifyMessage,
  },
  {
    file: 'track.v1.json',
    title: 'lookstream track message v1',
    description: `Value of a record on ${TOPICS.track}.`,
    schema: TrackMessage,
  },
  {
    file: 'group.v1.json',
    title: 'lookstream group message v1',
    description: `Value of a record on ${TOPICS.group}.`,
    schema: GroupMessage,
  },
  {
    file: 'canonical-message.v1.json',
    title: 'lookstream canonical message v1',
    description: 'Any identify, track or group message (each goes to its own topic).',
    schema: CanonicalMessage,
  },
  {
    file: 'send-event.v1.json',
    title: 'lookstream send event v1',
    description: `Value of a record on ${TOPICS.sends}.`,
    schema: SendEvent,
  },
]

/**
 * The JSON Schema documents published under docs/schemas/, keyed by file name. TypeBox schemas are JSON
 * Schema already; this adds the document keywords and drops nothing else.
 */
export function jsonSchemas(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {}
  for (const { file, title, description, schema } of documents) {
    out[file] = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: `${SCHEMA_BASE}${file}`,
      title,
      description,
      ...(JSON.parse(JSON.stringify(schema)) as Record<string, unknown>),
    }
  }
  return out
}
