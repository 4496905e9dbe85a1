import {
  DEFAULT_CONNECTION,
  HEADERS,
  INTEGRATION_KEYS,
  decodeMessage,
  parseDestinationsHeader,
  type CanonicalMessage,
  type DestinationId,
} from '@lookstream/events'

/** A consumed Kafka record with UTF-8 header values, as the runtime sees it. */
export interface InboundRecord {
  topic: string
  partition: number
  offset: string
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, string | undefined>
  timestamp: string
}

export type Route =
  | { kind: 'skip' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'deliver'; message: CanonicalMessage; connection: string; sendId: string | undefined }

/**
 * Decides what a destination does with a record: skip it (for other destinations: decided from the routing
 * header without parsing when the header is there, else from `integrations` with Segment's semantics),
 * dead-letter it (not a valid canonical message: other producers write these topics too), or deliver it.
 */
export function routeRecord(record: InboundRecord, destination: DestinationId): Route {
  const header = record.headers[HEADERS.destinations]
  if (header !== undefined && !headerNames(header, destination)) return { kind: 'skip' }
  const decoded = decodeMessage(record.value)
  if (!decoded.ok) return { kind: 'invalid', reason: `invalid message: ${decoded.errors.join('; ')}` }
  const connection = connectionFor(decoded.message, destination)
  if (connection === undefined) {
    // The header named us but the message's own routing does not: the message is the authority.
    return { kind: 'skip' }
  }
  const sendId = record.headers[HEADERS.sendId] ?? decoded.message.context?.lookstream?.sendId
  return { kind: 'deliver', message: decoded.message, connection, sendId }
}

// Consecutive records carry the same header value (one string, reused by the Kafka consumer): its answer is kept.
let lastHeader: { value: string; destination: DestinationId; named: boolean } | undefined

function headerNames(value: string, destination: DestinationId): boolean {
  if (lastHeader === undefined || lastHeader.value !== value || lastHeader.destination !== destination) {
    lastHeader = { value, destination, named: parseDestinationsHeader(value).includes(destination) }
  }
  return lastHeader.named
}

/**
 * The connection of `integrationOptions(message, destination)`, or undefined when that is undefined (the same
 * Segment semantics, for one destination): spares listing every destination and copying the options per record.
 */
export function connectionFor(message: CanonicalMessage, destination: DestinationId): string | undefined {
  const integrations = message.integrations
  const setting = integrations[INTEGRATION_KEYS[destination]]
  const included = integrations.All !== false ? setting !== false : setting !== undefined && setting !== false
  if (!included) return undefined
  return (typeof setting === 'object' ? setting.connection : undefined) ?? DEFAULT_CONNECTION
}
