import { Type } from 'typebox'

// Environment fragments shared by every service. A service composes them with its own keys:
//   const Config = Type.Object({ ...KafkaEnv.properties, ...HttpEnv.properties, MY_KEY: Type.String() })

const HOST_PORT = '[^\\s,:]+:\\d{1,5}'

export const KafkaEnv = Type.Object({
  KAFKA_BROKERS: Type.String({
    default: '127.0.0.1:9092',
    pattern: `^${HOST_PORT}(,${HOST_PORT})*$`,
    description: 'comma-separated host:port list',
  }),
  KAFKA_CLIENT_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
})

export const RedisEnv = Type.Object({
  REDIS_URL: Type.String({
    default: 'redis://127.0.0.1:6379',
    pattern: '^rediss?://',
    description: 'a redis:// or rediss:// URL',
  }),
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
