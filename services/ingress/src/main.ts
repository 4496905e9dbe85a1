import { loadConfigOrExit } from '@lookstream/config'
import { TOPICS } from '@lookstream/events'
import { createKafka, createProducer, ensureTopics } from '@lookstream/kafka'
import { createLogger } from '@lookstream/service'
import { Redis } from 'ioredis'
import { buildApp } from './app.ts'
import { IngressConfig } from './config.ts'
import { createDestinationDirectory } from './destinations/directory.ts'
import { parseLookerHosts } from './looker/looker-hosts.ts'
import { createSendStore } from './sends/send-store.ts'

// Composition root: config → clients → app → listen. Clients close in onClose, after in-flight sends.
const config = loadConfigOrExit(IngressConfig)
try {
  parseLookerHosts(config.LOOKER_HOSTS)
} catch (err) {
  process.stderr.write(`LS_CONFIG_INVALID: ${(err as Error).message}\n`)
  process.exit(1)
}
const logger = createLogger({ name: 'ingress', level: config.LOG_LEVEL })
const kafka = createKafka({
  brokers: config.KAFKA_BROKERS,
  clientId: config.KAFKA_CLIENT_ID ?? 'lookstream-ingress',
  logger,
})
await ensureTopics(
  kafka,
  [TOPICS.identify, TOPICS.track, TOPICS.group, TOPICS.sends].map((topic) => ({ topic, numPartitions: 6 })),
)
const producer = await createProducer(kafka, {
  maxInFlightMessages: config.PRODUCER_MAX_IN_FLIGHT_MESSAGES,
  maxInFlightBytes: config.PRODUCER_MAX_IN_FLIGHT_BYTES,
  maxBatchMessages: config.PRODUCER_MAX_BATCH_MESSAGES,
})
const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2, lazyConnect: false })
redis.on('error', (err: unknown) => logger.warn({ err }, 'redis error'))

const service = buildApp(config, {
  producer,
  sends: createSendStore(redis, config.SEND_TTL_SECONDS),
  destinations: createDestinationDirectory(redis, {
    cacheMs: config.DESTINATION_REGISTRY_CACHE_MS,
    timeoutMs: config.DESTINATION_REGISTRY_TIMEOUT_MS,
  }),
  logger,
  readiness: { redis: async () => (await redis.ping()) === 'PONG' },
})
service.app.addHook('onClose', async () => {
  await producer.close()
  await redis.quit()
})
service.installSignalHandlers()
const address = await service.listen()
logger.info({ url: address.url }, 'lookstream ingress listening')
