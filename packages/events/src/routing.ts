import {
  DEFAULT_CONNECTION,
  DESTINATIONS,
  INTEGRATION_KEYS,
  type DestinationId,
  type IntegrationKey,
} from './destinations.ts'
import { HEADERS } from './headers.ts'
import {
  type BrazeOptions,
  type CanonicalMessage,
  type HeapOptions,
  type MParticleOptions,
  type RecurlyEngageOptions,
  type SegmentOptions,
} from './message-schema.ts'
import { SEND_EVENT_SCHEMA, type SendEvent } from './send-event.ts'
import { TOPICS, type CanonicalTopic } from './topics.ts'

export function topicFor(message: Pick<CanonicalMessage, 'type'>): CanonicalTopic {
  return TOPICS[message.type]
}

/** Kafka key: the identity whose messages must stay in order (userId, else anonymousId; groupId for group). */
export function keyFor(message: CanonicalMessage): string {
  if (message.type === 'group') return message.groupId
  const key = message.userId ?? message.anonymousId
  // The schema requires one of them; a message that was not validated must not silently get a null key.
  if (key === undefined) throw new TypeError('message has neither userId nor anonymousId')
  return key
}

/**
 * Destinations a message is for, in DESTINATIONS order, with Segment's semantics: with `All: false` only the
 * keys set to true or to an options object; otherwise (All true or absent) every destination except those
 * set to false.
 */
export function destinationsOf(message: Pick<CanonicalMessage, 'integrations'>): DestinationId[] {
  const integrations = message.integrations
  const all = integrations.All !== false
  return DESTINATIONS.filter((id) => {
    const setting = integrations[INTEGRATION_KEYS[id]]
    return all ? setting !== false : setting !== undefined && setting !== false
  })
}

export interface DestinationOptions {
  segment: SegmentOptions
  braze: BrazeOptions
  heap: HeapOptions
  mparticle: MParticleOptions
  'recurly-engage': RecurlyEngageOptions
}

/**
 * The per-destination options of a message, with `connection` resolved ('default' when not named), or
 * undefined when the message is not for that destination.
 */
export function integrationOptions<D extends DestinationId>(
  message: Pick<CanonicalMessage, 'integrations'>,
  destination: D,
): (DestinationOptions[D] & { connection: string }) | undefined {
  // destinationsOf's rule for this one destination, without building the list (this runs once per message).
  const key: IntegrationKey = INTEGRATION_KEYS[destination]
  const setting = message.integrations[key]
  const included = message.integrations.All !== false ? setting !== false : setting !== undefined && setting !== false
  if (!included) return undefined
  const options = typeof setting === 'object' ? setting : {}
  return { ...options, connection: options.connection ?? DEFAULT_CONNECTION }
}

/** `lookstream-schema` header value for a message, e.g. 'identify.v1'. */
export function schemaOf(message: Pick<CanonicalMessage, 'type'>): string {
  return `${message.type}.v1`
}

/** The headers every producer sets on a canonical message (see docs/producing.md). */
export function headersFor(
  message: CanonicalMessage,
  options: { producer: string; sendId?: string | undefined },
): Record<string, string> {
  const headers: Record<string, string> = {
    [HEADERS.destinations]: destinationsOf(message).join(','),
    [HEADERS.schema]: schemaOf(message),
    [HEADERS.producer]: options.producer,
  }
  const sendId = options.sendId ?? message.context?.lookstream?.sendId
  if (sendId !== undefined) headers[HEADERS.sendId] = sendId
  return headers
}

/** Parses the `lookstream-destinations` header; unknown ids are ignored so new destinations stay additive. */
export function parseDestinationsHeader(value: string | undefined): DestinationId[] {
  if (value === undefined || value === '') return []
  const ids = value.split(',').map((id) => id.trim())
  return DESTINATIONS.filter((id) => ids.includes(id))
}

/** Headers of a lookstream.sends.v1 record (its key is the sendId). */
export function sendEventHeaders(
  event: Pick<SendEvent, 'sendId'>,
  options: { producer: string },
): Record<string, string> {
  return {
    [HEADERS.schema]: SEND_EVENT_SCHEMA,
    [HEADERS.producer]: options.producer,
    [HEADERS.sendId]: event.sendId,
  }
}
