import { Kafka } from 'kafkajs'
import { pino, type Logger } from 'pino'
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
  })
}
