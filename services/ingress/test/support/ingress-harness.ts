import type {} from '@lookstream/testing' // inject('kafkaBrokers' | 'redisUrl') types
import { loadConfig } from '@lookstream/config'
import { RegistryHeartbeat, TOPICS } from '@lookstream/events'
import { createKafka, createProducer, ensureTopics, type LookstreamProducer } from '@lookstream/kafka'
import { startLocalKafka, type LocalKafka } from '@lookstream/local-kafka'
import { createLogger, type Service } from '@lookstream/service'
import { Redis } from 'ioredis'
import { Writable } from 'node:stream'
import { request } from 'undici'
import { actions } from '../../src/actions/index.ts'
import { buildApp } from '../../src/app.ts'
import { IngressConfig } from '../../src/config.ts'
import { createDestinationDirectory } from '../../src/destinations/directory.ts'
import { tokenFromNonce } from '../../src/looker/token.ts'
import { reportRedisAvailability } from '../../src/ingress-metrics.ts'
import { ingressReadiness } from '../../src/readiness.ts'
import { createSendStore } from '../../src/sends/send-store.ts'
import { createHistoryStore } from '../../src/history/history-store.ts'
import { deriveHistoryKey } from '@lookstream/send-history'

export const SECRET = 'integration-secret-0123456789abcdef'
export const TOKEN = tokenFromNonce(SECRET, 'c0ffee')
export const AUTH = `Token token="${TOKEN}"`

export interface Ingress {
  url: string
  service: Service
  producer: LookstreamProducer
  redis: Redis
  logs: string[]
  close(): Promise<void>
}

export async function startKafka(dataDir?: string, port?: number): Promise<LocalKafka> {
  return startLocalKafka({
    ...(dataDir ? { dataDir } : { inMemory: true }),
    ...(port ? { port } : {}),
    partitions: 3,
    logLevel: 'error',
  })
}

export async function createTopics(brokers: string): Promise<void> {
  const kafka = createKafka({
    brokers,
    clientId: 'ingress-test-admin',
    logger: createLogger({ name: 'test', level: 'silent' }),
  })
  await ensureTopics(
    kafka,
    [TOPICS.identify, TOPICS.track, TOPICS.group, TOPICS.sends].map((topic) => ({ topic, numPartitions: 3 })),
  )
}

export async function startIngress(options: {
  brokers: string
  redisUrl: string
  lookerHosts: string
  env?: Record<string, string>
  kafkaRetries?: number
  /** false: register no destination (the test registers what it needs). */
  registered?: boolean
}): Promise<Ingress> {
  const config = loadConfig(IngressConfig, {
    ACTION_HUB_SECRET: SECRET,
    LOOKER_HOSTS: options.lookerHosts,
    PORT: '0',
    KAFKA_BROKERS: options.brokers,
    REDIS_URL: options.redisUrl,
    KEEPALIVE_MS: '200',
    LOG_LEVEL: 'info',
    ...options.env,
  })
  // Logs are kept to check that no token, secret or row value is ever written.
  const logs: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString('utf8'))
      callback()
    },
  })
  const logger = createLogger({ name: 'ingress', level: 'info', stream })
  const kafka = createKafka({
    brokers: options.brokers,
    clientId: 'ingress-test',
    logger,
    retries: options.kafkaRetries ?? 3,
    requestTimeoutMs: 5000,
  })
  const producer = await createProducer(kafka, { timeoutMs: 5000 })
  const redis = new Redis(options.redisUrl, {
    maxRetriesPerRequest: 1,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
  })
  const history =
    config.SEND_HISTORY_SECRET === undefined
      ? {}
      : {
          history: createHistoryStore({
            redis,
            key: deriveHistoryKey(config.SEND_HISTORY_SECRET),
            limits: { maxEntries: config.SEND_HISTORY_MAX_FAILURES, maxBytes: config.SEND_HISTORY_MAX_FAILURE_BYTES },
            maxRememberedRows: config.CHANGED_ROWS_MAX_ROWS,
            ttlSeconds: 3600,
          }),
        }
  // Every destination is registered, as if its service ran, unless the test brings its own registry view.
  if (options.registered !== false) await registerAllDestinations(redis)
  const readiness = ingressReadiness(kafka)
  const service = buildApp(config, {
    producer,
    sends: createSendStore(redis, 3600),
    destinations: createDestinationDirectory(redis, { cacheMs: 0, timeoutMs: 2000 }),
    logger,
    ...history,
    readiness: readiness.checks,
  })
  reportRedisAvailability(service.registry, redis)
  const address = await service.listen()
  return {
    url: address.url,
    service,
    producer,
    redis,
    logs,
    async close() {
      await service.close()
      await readiness.close().catch(() => {})
      await producer.close().catch(() => {})
      redis.disconnect()
    },
  }
}

/**
 * Registers every destination with the `default` and `eu` connections for an hour, the way a running destination service
 * does (packages/events/src/registry.ts), so the ingress offers and accepts every action.
 */
export async function registerAllDestinations(redis: Redis, connections: string[] = ['default', 'eu']): Promise<void> {
  const destinations = [...new Set(actions.map((action) => action.destination))]
  await Promise.all(
    destinations.map((destination) =>
      new RegistryHeartbeat(
        redis,
        { destination, instance: 'ingress-test', version: 'test', connections, startedAt: new Date().toISOString() },
        1_200_000,
      ).beat(),
    ),
  )
}

export interface LookerAnswer {
  status: number
  text: string
  json: { looker?: Record<string, unknown> } & Record<string, unknown>
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<LookerAnswer> {
  const response = await request(url, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  })
  const text = await response.body.text()
  return { status: response.statusCode, text, json: JSON.parse(text) as LookerAnswer['json'] }
}
