import {
  HEADERS,
  decodeMessage,
  integrationOptions,
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
  if (header !== undefined && !parseDestinationsHeader(header).includes(destination)) return { kind: 'skip' }
  const decoded = decodeMessage(record.value)
  if (!decoded.ok) return { kind: 'invalid', reason: `invalid message: ${decoded.errors.join('; ')}` }
  const options = integrationOptions(decoded.message, destination)
  if (options === undefined) {
    // The header named us but the message's own routing does not: the message is the authority.
    return { kind: 'skip' }
  }
  const sendId = record.headers[HEADERS.sendId] ?? decoded.message.context?.lookstream?.sendId
  return { kind: 'deliver', message: decoded.message, connection: options.connection, sendId }
}
