import { Type } from 'typebox'

// Environment fragments shared by every service. A service composes them with its own keys:
//   const Config = Type.Object({ ...KafkaEnv.properties, ...HttpEnv.properties, MY_KEY: Type.String() })

const HOST_PORT = '[^\\s,:]+:\\d{1,5}'

export const KAFKA_SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const
export type KafkaSecurityProtocol = (typeof KAFKA_SECURITY_PROTOCOLS)[number]
export const KAFKA_SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number]

export const KafkaEnv = Type.Object({
  KAFKA_BROKERS: Type.String({
    default: '127.0.0.1:9092',
    pattern: `^${HOST_PORT}(,${HOST_PORT})*$`,
    description: 'comma-separated host:port list',
  }),
  KAFKA_CLIENT_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  KAFKA_SECURITY_PROTOCOL: Type.Union(
    KAFKA_SECURITY_PROTOCOLS.map((p) => Type.Literal(p)),
    { default: 'PLAINTEXT', description: 'as Kafka names it: TLS with SSL, credentials with SASL_' },
  ),
  KAFKA_SSL_CA_FILE: Type.Optional(
    Type.String({ minLength: 1, description: 'PEM file of the CA(s) that signed the brokers (default: system CAs)' }),
  ),
  KAFKA_SSL_CERT_FILE: Type.Optional(Type.String({ minLength: 1, description: 'PEM client certificate (mutual TLS)' })),
  KAFKA_SSL_KEY_FILE: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key of that certificate' })),
  KAFKA_SSL_SERVERNAME: Type.Optional(
    Type.String({ minLength: 1, maxLength: 253, description: 'TLS server name to check instead of the broker host' }),
  ),
  KAFKA_SASL_MECHANISM: Type.Optional(
    Type.Union(
      KAFKA_SASL_MECHANISMS.map((m) => Type.Literal(m)),
      { description: 'required with SASL_SSL or SASL_PLAINTEXT' },
    ),
  ),
  KAFKA_SASL_USERNAME: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  KAFKA_SASL_USERNAME_FILE: Type.Optional(Type.String({ minLength: 1, description: 'file holding the username' })),
  KAFKA_SASL_PASSWORD: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  KAFKA_SASL_PASSWORD_FILE: Type.Optional(Type.String({ minLength: 1, description: 'file holding the password' })),
  KAFKA_TOPICS_MODE: Type.Union([Type.Literal('create'), Type.Literal('verify')], {
    default: 'create',
    description: 'create: create missing topics (development); verify: refuse to start on a missing or unsafe topic',
  }),
})

const DAY_MS = 24 * 3600 * 1000

/** How the topics command sets topics up; the defaults survive the loss of one broker. */
export const KafkaTopicPolicyEnv = Type.Object({
  KAFKA_TOPIC_PARTITIONS: Type.Integer({ minimum: 1, maximum: 1000, default: 6 }),
  KAFKA_TOPIC_REPLICATION_FACTOR: Type.Integer({ minimum: 1, maximum: 32, default: 3 }),
  KAFKA_TOPIC_MIN_INSYNC_REPLICAS: Type.Integer({ minimum: 1, maximum: 32, default: 2 }),
  KAFKA_TOPIC_RETENTION_MS: Type.Integer({ minimum: -1, default: 7 * DAY_MS }),
  KAFKA_DLQ_RETENTION_MS: Type.Integer({
    minimum: -1,
    default: 30 * DAY_MS,
    description: 'dead letters wait for a person',
  }),
})

export const REDIS_MODES = ['standalone', 'cluster', 'sentinel'] as const
export type RedisMode = (typeof REDIS_MODES)[number]

export const RedisEnv = Type.Object({
  REDIS_URL: Type.String({
    default: 'redis://127.0.0.1:6379',
    pattern: '^rediss?://',
    description: 'a redis:// or rediss:// URL',
  }),
  REDIS_MODE: Type.Union(
    REDIS_MODES.map((m) => Type.Literal(m)),
    { default: 'standalone', description: 'standalone, cluster (Redis Cluster) or sentinel' },
  ),
  REDIS_CLUSTER_NODES: Type.Optional(
    Type.String({
      pattern: `^${HOST_PORT}(,${HOST_PORT})*$`,
      description: 'cluster seed nodes, host:port list (default: the REDIS_URL host)',
    }),
  ),
  REDIS_SENTINELS: Type.Optional(
    Type.String({ pattern: `^${HOST_PORT}(,${HOST_PORT})*$`, description: 'sentinel host:port list' }),
  ),
  REDIS_SENTINEL_MASTER: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'monitored master name' }),
  ),
  REDIS_SENTINEL_USERNAME: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  REDIS_SENTINEL_PASSWORD_FILE: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_USERNAME: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'ACL user' })),
  REDIS_USERNAME_FILE: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_PASSWORD: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  REDIS_PASSWORD_FILE: Type.Optional(Type.String({ minLength: 1, description: 'file holding the password' })),
  REDIS_TLS_CA_FILE: Type.Optional(
    Type.String({ minLength: 1, description: 'PEM CA for rediss:// (default: system CAs)' }),
  ),
  REDIS_TLS_CERT_FILE: Type.Optional(Type.String({ minLength: 1, description: 'PEM client certificate' })),
  REDIS_TLS_KEY_FILE: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key of that certificate' })),
  REDIS_TLS_SERVERNAME: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
})

export const HttpEnv = Type.Object({
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535 }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({
    default: 10_000,
    minimum: 0,
    description: 'how long a graceful shutdown may take before the process exits 1',
  }),
})

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export const LogEnv = Type.Object({
  LOG_LEVEL: Type.Union(
    LOG_LEVELS.map((level) => Type.Literal(level)),
    { default: 'info' },
  ),
})

/** Splits KAFKA_BROKERS into the list kafkajs and the harness expect. */
export function brokerList(brokers: string): string[] {
  return brokers
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0)
}
