import { type KafkaSecurity } from '@lookstream/config'
import { Kafka, type KafkaConfig, type SASLOptions } from 'kafkajs'
import { type ConnectionOptions } from 'node:tls'
import { pino, type Logger } from 'pino'
import './compression.ts'
import { kafkaLogLevelFor, pinoLogCreator } from './kafka-log-creator.ts'

/** The client handle other packages pass around; only this package knows it is kafkajs. */
export type KafkaClient = Kafka

export interface CreateKafkaOptions {
  /** '127.0.0.1:9092' or a comma-separated list, as in KAFKA_BROKERS, or an array. */
  brokers: string | readonly string[]
  clientId: string
  /** Services pass their own; scripts may leave it out (warnings and errors go to stderr). */
  logger?: Logger
  connectionTimeoutMs?: number
  requestTimeoutMs?: number
  /** Retries of one request (kafkajs' exponential backoff); default 8, about 20 s in total. */
  retries?: number
  /** TLS and SASL, from resolveKafkaSecurity(config); plaintext without credentials when absent. */
  security?: KafkaSecurity
}

const SASL_MECHANISMS = { PLAIN: 'plain', 'SCRAM-SHA-256': 'scram-sha-256', 'SCRAM-SHA-512': 'scram-sha-512' } as const

/** The kafkajs `ssl` and `sasl` settings for a resolved KafkaEnv security. */
export function kafkaSecurityOptions(security: KafkaSecurity | undefined): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  if (security === undefined) return {}
  const options: Pick<KafkaConfig, 'ssl' | 'sasl'> = {}
  if (security.tls !== null) {
    const tls: ConnectionOptions = { rejectUnauthorized: true }
    if (security.tls.ca !== undefined) tls.ca = [security.tls.ca]
    if (security.tls.cert !== undefined) tls.cert = security.tls.cert
    if (security.tls.key !== undefined) tls.key = security.tls.key
    if (security.tls.servername !== undefined) tls.servername = security.tls.servername
    options.ssl = tls
  }
  if (security.sasl !== null) {
    const { mechanism, username, password } = security.sasl
    options.sasl = { mechanism: SASL_MECHANISMS[mechanism], username, password } as SASLOptions
  }
  return options
}

export function parseBrokers(brokers: string | readonly string[]): string[] {
  const list = (typeof brokers === 'string' ? brokers.split(',') : [...brokers]).map((b) => b.trim()).filter(Boolean)
  if (list.length === 0) throw new TypeError('no Kafka brokers given')
  return list
}

export function createKafka(options: CreateKafkaOptions): KafkaClient {
  const base = options.logger ?? pino({ level: 'warn' }, pino.destination(2))
  const logger = base.child({ component: 'kafka' })
  return new Kafka({
    clientId: options.clientId,
    brokers: parseBrokers(options.brokers),
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    retry: { initialRetryTime: 100, maxRetryTime: 5000, retries: options.retries ?? 5 },
    logLevel: kafkaLogLevelFor(logger),
    logCreator: pinoLogCreator(logger),
    ...kafkaSecurityOptions(options.security),
  })
}
