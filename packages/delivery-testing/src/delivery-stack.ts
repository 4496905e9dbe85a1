import { HEADERS, MESSAGE_TOPICS, headersFor, type CanonicalMessage } from '@lookstream/events'
import {
  createKafka,
  createProducer,
  ensureTopics,
  runConsumer,
  type ConsumedRecord,
  type KafkaClient,
  type LookstreamProducer,
} from '@lookstream/kafka'
import { type Simulator } from '@lookstream/simulators'
import {
  loadLocalKafka,
  startLocalKafkaTracked,
  startRedis,
  waitFor,
  type LocalKafka,
  type RedisProcess,
} from '@lookstream/testing'
import { randomUUID } from 'node:crypto'
import { pino } from 'pino'

// What every destination service's tests stand on: one broker, one redis-server and the destination's simulator
// per test file. The canonical topic names and the consumer group `lookstream.<destination>` are fixed by
// contract, so test files must not share a broker.
export interface DeliveryStack<Sim extends Simulator = Simulator> {
  kafka: LocalKafka
  redis: RedisProcess
  simulator: Sim
  client: KafkaClient
  producer: LookstreamProducer
  stop(): Promise<void>
}

export interface DeliveryStackOptions<Sim extends Simulator> {
  /** Starts the destination's simulator (on 127.0.0.1, a free port). */
  simulator: () => Promise<Sim>
  /** Partitions of the canonical topics (default 4). */
  partitions?: number
}

const silent = pino({ level: 'silent' })

export async function startDeliveryStack<Sim extends Simulator>(
  options: DeliveryStackOptions<Sim>,
): Promise<DeliveryStack<Sim>> {
  const loaded = await loadLocalKafka()
  if ('unavailable' in loaded) throw new Error(loaded.unavailable)
  const kafka = await startLocalKafkaTracked(loaded.start, { inMemory: true, initialRebalanceDelayMs: 0 })
  const redis = await startRedis()
  const simulator = await options.simulator()
  const client = createKafka({ brokers: kafka.brokers, clientId: 'delivery-test', logger: silent })
  await ensureTopics(
    client,
    MESSAGE_TOPICS.map((topic) => ({ topic, numPartitions: options.partitions ?? 4 })),
  )
  const producer = await createProducer(client)
  return {
    kafka,
    redis,
    simulator,
    client,
    producer,
    async stop() {
      await producer.close().catch(() => undefined)
      await simulator.close()
      await redis.stop()
      await kafka.stop()
    },
  }
}

/**
 * Environment for runDestination / a destination service process against this stack: the runtime's settings,
 * tuned for tests (short backoffs and retry delays), plus the destination's own (`destinationEnv`).
 */
export function serviceEnv(
  stack: DeliveryStack,
  destinationEnv: Record<string, string>,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    KAFKA_BROKERS: stack.kafka.brokers,
    REDIS_URL: stack.redis.url,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    DELIVERY_TOPIC_PARTITIONS: '4',
    DELIVERY_BACKOFF_BASE_MS: '50',
    DELIVERY_BACKOFF_MAX_MS: '500',
    DELIVERY_REQUEST_TIMEOUT_MS: '1000',
    DELIVERY_RETRY_DELAY_MS: '500',
    DELIVERY_RETRY_MAX_DELAY_MS: '1000',
    DELIVERY_REGISTRY_HEARTBEAT_MS: '500',
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    KAFKA_HEARTBEAT_INTERVAL_MS: '500',
    SHUTDOWN_TIMEOUT_MS: '10000',
    ...destinationEnv,
    ...extra,
  }
}

/** An identify message as the ingress writes it, for `integrations` (e.g. `{ All: false, Braze: {...} }`). */
export function identify(
  runId: string,
  index: number,
  integrations: Record<string, unknown>,
  traits: Record<string, unknown> = {},
): CanonicalMessage {
  return {
    type: 'identify',
    messageId: `${runId}-${index}`,
    userId: `user-${index}`,
    traits: { plan: index % 2 === 0 ? 'annual' : 'monthly', index, ...traits },
    context: { lookstream: { sendId: `send-${runId}`, row: index, action: 'test' } },
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: { All: false, ...integrations },
  }
}

export function newRunId(): string {
  return randomUUID().slice(0, 8)
}

/** Produces canonical messages to their topics with the headers the ingress sets, keyed by user. */
export async function produceMessages(
  stack: DeliveryStack,
  messages: readonly CanonicalMessage[],
  options: { producer?: string; sendId?: string; headers?: Record<string, string> } = {},
): Promise<void> {
  await Promise.all(
    messages.map((message) =>
      stack.producer.send({
        topic: `lookstream.${message.type}.v1`,
        key: message.userId ?? message.anonymousId ?? null,
        value: JSON.stringify(message),
        headers: {
          ...headersFor(message, { producer: options.producer ?? 'ingress', sendId: options.sendId }),
          ...options.headers,
        },
      }),
    ),
  )
}

export async function produceRaw(
  stack: DeliveryStack,
  topic: string,
  value: string,
  headers: Record<string, string>,
): Promise<void> {
  await stack.producer.send({ topic, key: 'raw', value, headers })
}

/** Reads a topic from the beginning until `count` records matching `filter` arrived. */
export async function readTopic(
  stack: Pick<DeliveryStack, 'client'>,
  topic: string,
  count: number,
  filter: (record: ConsumedRecord) => boolean = () => true,
  timeoutMs = 30_000,
): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = []
  const runner = await runConsumer({
    kafka: stack.client,
    groupId: `reader-${randomUUID()}`,
    topics: [topic],
    fromBeginning: true,
    logger: silent,
    sessionTimeoutMs: 6000,
    heartbeatIntervalMs: 500,
    eachBatch: (batch) => {
      for (const record of batch.records) if (filter(record)) records.push(record)
      return Promise.resolve()
    },
  })
  try {
    await waitFor(() => records.length >= count, { timeoutMs, message: `${count} records on ${topic}` })
    return records
  } finally {
    await runner.stop()
  }
}

export function messageIdOf(record: ConsumedRecord): string | undefined {
  try {
    return (JSON.parse(record.value?.toString('utf8') ?? '') as { messageId?: string }).messageId
  } catch {
    return undefined
  }
}

export { HEADERS }
