export { canonicalJson, contentHash } from './canonical-json.ts'
export {
  DEFAULT_CONNECTION,
  DESTINATIONS,
  INTEGRATION_KEYS,
  isDestinationId,
  type DestinationId,
  type IntegrationKey,
} from './destinations.ts'
export { HEADERS, type HeaderName } from './headers.ts'
export { jsonSchemas } from './json-schemas.ts'
export {
  MESSAGE_ID_NAMESPACE,
  NAMESPACE_URL,
  messageIdFor,
  messageIdHasher,
  uuidV5,
  type MessageIdHasher,
  type MessageIdParts,
  type MessageIdSendParts,
} from './message-id.ts'
export {
  BrazeOptions,
  CanonicalMessage,
  Connection,
  Context,
  GroupMessage,
  HeapOptions,
  IdentifyMessage,
  Integrations,
  LookstreamContext,
  MESSAGE_TYPES,
  MParticleOptions,
  MessageId,
  RecurlyEngageOptions,
  SegmentOptions,
  Timestamp,
  TrackMessage,
  type MessageType,
} from './message-schema.ts'
export {
  destinationsOf,
  headersFor,
  integrationOptions,
  keyFor,
  parseDestinationsHeader,
  schemaOf,
  sendEventHeaders,
  topicFor,
  type DestinationOptions,
} from './routing.ts'
export {
  DestinationIdSchema,
  MAX_REJECT_REASONS,
  RejectReason,
  SEND_EVENT_SCHEMA,
  SendCounts,
  SendEvent,
} from './send-event.ts'
export { MESSAGE_TOPICS, TOPICS, dlqTopic, retryTopic, type CanonicalTopic } from './topics.ts'
export { firstInexactNumber, mayHoldInexactNumber, parseExact, sameDecimal } from './exact-json.ts'
export {
  MAX_MESSAGE_BYTES,
  decodeMessage,
  decodeSendEvent,
  validateBuiltMessage,
  validateMessage,
  validateSendEvent,
  type ValidationResult,
} from './validate.ts'
export {
  REGISTRY_KEY,
  RegistryHeartbeat,
  liveDestinations,
  type ConnectionSettings,
  type LiveDestination,
  type RegistryEntry,
  type RegistryRedis,
} from './registry.ts'
export { SEND_INDEX_KEY, sendRecordKey } from './redis-keys.ts'
