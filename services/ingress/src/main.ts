import { loadConfigOrExit, orExit, orExitAsync, resolveKafkaSecurity, resolveRedisSettings } from '@lookstream/config'
import { TOPICS } from '@lookstream/events'
import { classifyKafkaStartError, createKafka, createProducer, ensureTopics, verifyTopics } from '@lookstream/kafka'
import { createLogger } from '@lookstream/service'
import { checkRedisAtStart, createRedis } from '@lookstream/redis'
import { buildApp } from './app.ts'
import { IngressConfig } from './config.ts'
import { createDestinationDirectory } from './destinations/directory.ts'
import { parseLookerHosts } from './looker/looker-hosts.ts'
import { ingressReadiness } from './readiness.ts'
import { reportRedisAvailability } from './ingress-metrics.ts'
import { createSendStore } from './sends/send-store.ts'
import { createHistoryStore } from './history/history-store.ts'
import { deriveHistoryKey } from '@lookstream/send-history'

// Composition root: config → clients → app → listen. Clients close in onClose, after in-flight sends.
const config = loadConfigOrExit(IngressConfig)
try {
  parseLookerHosts(config.LOOKER_HOSTS)
} catch (err) {
  process.stderr.write(`LS_CONFIG_INVALID: ${(err as Error).message}\n`)
  process.exit(1)
}
const kafkaSecurity = orExit(() => resolveKafkaSecurity(config))
const redisConnection = orExit(() => resolveRedisSettings(config))
const logger = createLogger({ name: 'ingress', level: config.LOG_LEVEL })
const kafka = createKafka({
  brokers: config.KAFKA_BROKERS,
  clientId: config.KAFKA_CLIENT_ID ?? 'lookstream-ingress',
  logger,
  security: kafkaSecurity,
})
// Refused credentials or an untrusted certificate end the start with one line naming the setting.
const kafkaStartError = (err: unknown) => {
  throw classifyKafkaStartError(err, kafkaSecurity) ?? err
}
const topics = [TOPICS.identify, TOPICS.track, TOPICS.group, TOPICS.sends]
await orExitAsync(
  (config.KAFKA_TOPICS_MODE === 'verify'
    ? // Production: the topics exist (pnpm topics apply) and are safe, or the ingress does not start.
      verifyTopics(kafka, topics)
    : ensureTopics(
        kafka,
        topics.map((topic) => ({ topic, numPartitions: 6 })),
      ).then(() => undefined)
  ).catch(kafkaStartError),
)
const producer = await createProducer(kafka, {
  maxInFlightMessages: config.PRODUCER_MAX_IN_FLIGHT_MESSAGES,
  maxInFlightBytes: config.PRODUCER_MAX_IN_FLIGHT_BYTES,
  maxBatchMessages: config.PRODUCER_MAX_BATCH_MESSAGES,
  compression: config.PRODUCER_COMPRESSION,
})
// Every command is bounded: with Redis stopped, a send still runs (and says its record is incomplete) and
// GET /sends answers 503 within REDIS_COMMAND_TIMEOUT_MS instead of hanging for the outage.
const redis = createRedis(redisConnection, {
  maxRetriesPerRequest: 2,
  connectionName: 'lookstream-ingress',
  commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
})
redis.on('error', (err: unknown) => logger.warn({ err }, 'redis error'))
// An unreachable Redis only fails the send-status calls (lookstream_ingress_redis_available reports it); refused
// credentials stop here.
await orExitAsync(checkRedisAtStart(redis, redisConnection))
const readiness = ingressReadiness(kafka)

const service = buildApp(config, {
  producer,
  sends: createSendStore(redis, config.SEND_TTL_SECONDS),
  ...(config.SEND_HISTORY_SECRET === undefined
    ? {}
    : {
        history: createHistoryStore({
          redis,
          key: deriveHistoryKey(config.SEND_HISTORY_SECRET),
          limits: { maxEntries: config.SEND_HISTORY_MAX_FAILURES, maxBytes: config.SEND_HISTORY_MAX_FAILURE_BYTES },
          maxRememberedRows: config.CHANGED_ROWS_MAX_ROWS,
          ttlSeconds: config.SEND_TTL_SECONDS,
        }),
      }),
  destinations: createDestinationDirectory(redis, {
    cacheMs: config.DESTINATION_REGISTRY_CACHE_MS,
    timeoutMs: config.DESTINATION_REGISTRY_TIMEOUT_MS,
  }),
  logger,
  readiness: readiness.checks,
})
service.app.addHook('onClose', async () => {
  await readiness.close()
  await producer.close()
  await redis.quit()
})
reportRedisAvailability(service.registry, redis)
service.installSignalHandlers()
const address = await service.listen()
logger.info({ url: address.url }, 'lookstream ingress listening')
