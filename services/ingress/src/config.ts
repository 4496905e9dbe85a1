import { HttpEnv, KafkaEnv, LogEnv, RedisEnv } from '@lookstream/config'
import { Type, type Static } from 'typebox'

const MiB = 1024 * 1024

// Environment of the ingress (documented in README.md).
export const IngressConfig = Type.Object({
  ...HttpEnv.properties,
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  ...KafkaEnv.properties,
  ...RedisEnv.properties,
  ...LogEnv.properties,
  ACTION_HUB_SECRET: Type.String({ minLength: 16, description: 'signs and checks the Action Hub tokens' }),
  ACTION_HUB_LABEL: Type.String({ default: 'lookstream', minLength: 1, maxLength: 200 }),
  PUBLIC_URL: Type.Optional(
    Type.String({ pattern: '^https?://[^\\s]+$', description: 'base URL Looker reaches us at' }),
  ),
  LOOKER_HOSTS: Type.String({ minLength: 1, description: 'comma-separated origins allowed in download_url' }),
  MAX_BODY_BYTES: Type.Integer({ default: 64 * MiB, minimum: 1024, description: 'largest execute body (pushed data)' }),
  MAX_ENVELOPE_BYTES: Type.Integer({
    default: 4 * MiB,
    minimum: 1024,
    description: 'largest execute body without its attachment.data (pushed data is spooled to SPOOL_DIR)',
  }),
  SPOOL_DIR: Type.Optional(Type.String({ minLength: 1, description: 'where pushed attachments are spooled' })),
  MAX_RESULT_BYTES: Type.Integer({
    default: 4 * 1024 * MiB,
    minimum: 1024,
    description: 'largest Looker result read per send (download_url body or decoded attachment)',
  }),
  SEND_DEADLINE_MS: Type.Integer({
    default: 15 * 60_000,
    minimum: 1000,
    description: 'longest a send may read its result; then it stops and finishes with what it read',
  }),
  MAX_ROW_BYTES: Type.Integer({ default: 256 * 1024, minimum: 64 }),
  MAX_FIELD_BYTES: Type.Integer({ default: 32 * 1024, minimum: 16 }),
  MAX_FIELDS: Type.Integer({ default: 10_000, minimum: 1, description: 'most fields a Looker result may list' }),
  MAX_VALUE_DEPTH: Type.Integer({
    default: 64,
    minimum: 3,
    description: 'deepest nesting of a row (row object, cell, pivot, value)',
  }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 10, description: 'timeout of every Redis command' }),
  MAX_TRACKED_DISTINCT_ROWS: Type.Integer({
    default: 250_000,
    minimum: 1,
    description: 'distinct rows per send whose repeats are counted exactly for messageIds (16 bytes each)',
  }),
  MAX_CONCURRENT_SENDS: Type.Integer({ default: 8, minimum: 1 }),
  STREAM_TIMEOUT_MS: Type.Integer({ default: 60_000, minimum: 100, description: 'download_url connect/idle timeout' }),
  KEEPALIVE_MS: Type.Integer({ default: 30_000, minimum: 10 }),
  // A small producer window keeps the live set small: messages acknowledged before they age into V8's old
  // generation cost a scavenge, not a mark-compact (see README, memory).
  PRODUCER_MAX_IN_FLIGHT_MESSAGES: Type.Integer({ default: 1000, minimum: 1 }),
  PRODUCER_MAX_IN_FLIGHT_BYTES: Type.Integer({ default: 4 * MiB, minimum: 1024 }),
  PRODUCER_MAX_BATCH_MESSAGES: Type.Integer({ default: 500, minimum: 1 }),
  PRODUCER_COMPRESSION: Type.Union([Type.Literal('none'), Type.Literal('gzip'), Type.Literal('zstd')], {
    default: 'none',
    description: 'record batch compression (bench/README.md compares them)',
  }),
  DESTINATION_REGISTRY_CACHE_MS: Type.Integer({
    default: 1000,
    minimum: 0,
    maximum: 60_000,
    description: 'how long a read of the destination registry (which destinations and connections run) is reused',
  }),
  DESTINATION_REGISTRY_TIMEOUT_MS: Type.Integer({
    default: 2000,
    minimum: 10,
    maximum: 60_000,
    description: 'longest a list, form or execute waits for the destination registry in Redis',
  }),
  SEND_TTL_SECONDS: Type.Integer({ default: 30 * 24 * 3600, minimum: 60, description: 'how long send records live' }),
})

export type IngressConfig = Static<typeof IngressConfig>
