import { Type, type Static } from 'typebox'

/** Runtime settings every destination service shares (each has a default that suits production). */
export const DeliveryEnv = Type.Object({
  PORT: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 9100,
    description: 'HTTP port for /healthz /readyz /metrics',
  }),
  DELIVERY_QUICK_ATTEMPTS: Type.Integer({
    minimum: 1,
    maximum: 20,
    default: 4,
    description: 'requests per message in process before it is parked in the retry topic',
  }),
  DELIVERY_BACKOFF_BASE_MS: Type.Integer({ minimum: 1, default: 250 }),
  DELIVERY_BACKOFF_MAX_MS: Type.Integer({ minimum: 1, default: 10_000 }),
  DELIVERY_AUTH_PROBE_MAX_MS: Type.Integer({
    minimum: 10,
    default: 60_000,
    description: 'longest wait between probes of a connection paused by 401/403',
  }),
  DELIVERY_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 10, default: 15_000 }),
  DELIVERY_CONNECTIONS_PER_HOST: Type.Integer({ minimum: 1, maximum: 256, default: 16 }),
  DELIVERY_MAX_IN_FLIGHT_REQUESTS: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 64,
      description: "concurrent requests per connection (default: the destination's own, else 4)",
    }),
  ),
  DELIVERY_MAX_IN_FLIGHT_MESSAGES: Type.Integer({
    minimum: 1,
    // Two full Segment-sized requests in flight per connection; with the heap cap of the start scripts this
    // keeps a service well under 200 MB RSS however large the send (bench/README.md, destination memory).
    default: 5_000,
    description: 'messages taken from Kafka and not finished; above it partitions pause',
  }),
  DELIVERY_LINGER_MS: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
  DELIVERY_MAX_BATCH_ITEMS: Type.Optional(
    Type.Integer({ minimum: 1, description: "lower the destination's items per request (never raises it)" }),
  ),
  DELIVERY_RETRY_DELAY_MS: Type.Integer({
    minimum: 0,
    default: 30_000,
    description: 'first delay in the retry topic; doubles per cycle',
  }),
  DELIVERY_RETRY_MAX_DELAY_MS: Type.Integer({ minimum: 0, default: 15 * 60_000 }),
  DELIVERY_RETRY_WINDOW_HOURS: Type.Number({
    exclusiveMinimum: 0,
    default: 6,
    description: 'after this long since the first attempt a failing message goes to the DLQ',
  }),
  DELIVERY_ORDER_RELEASE_MS: Type.Integer({
    minimum: 1000,
    default: 30 * 60_000,
    description:
      'ordered destinations: this long after a user first had a message parked, its later messages stop waiting behind it',
  }),
  DELIVERY_ORDER_MAX_PARKED_PER_USER: Type.Integer({
    minimum: 1,
    default: 100,
    description: 'ordered destinations: a user with this many messages parked is released instead of holding more',
  }),
  DELIVERY_ORDER_MAX_USERS: Type.Integer({
    minimum: 1,
    default: 100_000,
    description: 'ordered destinations: users held in order at once (beyond it a newly parked user is not held)',
  }),
  DELIVERY_DEDUPE_TTL_SECONDS: Type.Integer({ minimum: 60, default: 7 * 24 * 3600 }),
  DELIVERY_PARTITIONS_CONCURRENTLY: Type.Integer({ minimum: 1, maximum: 64, default: 8 }),
  DELIVERY_TOPIC_PARTITIONS: Type.Integer({
    minimum: 1,
    default: 6,
    description: 'partitions of topics this service creates when missing (retry, DLQ)',
  }),
  SEND_HISTORY_SECRET: Type.Optional(
    Type.String({
      minLength: 16,
      description:
        "the ingress's SEND_HISTORY_SECRET: dead-lettered rows are then kept, sealed, for the send history page",
    }),
  ),
  DELIVERY_REGISTRY_HEARTBEAT_MS: Type.Integer({
    minimum: 100,
    maximum: 60_000,
    default: 5000,
    description: 'how often this replica renews its entry in the destination registry (it expires after 3 missed)',
  }),
  KAFKA_SESSION_TIMEOUT_MS: Type.Integer({ minimum: 1000, default: 30_000 }),
  KAFKA_HEARTBEAT_INTERVAL_MS: Type.Integer({ minimum: 100, default: 3000 }),
  KAFKA_FETCH_MAX_WAIT_MS: Type.Integer({
    minimum: 10,
    maximum: 10_000,
    default: 100,
    description: 'longest a fetch waits for data: bounds how late a message is noticed',
  }),
})
export type DeliveryEnv = Static<typeof DeliveryEnv>
