import type { S3Client } from '@aws-sdk/client-s3'
import { HEADERS, MESSAGE_TOPICS, TOPICS, headersFor, sendRecordKey, type CanonicalMessage } from '@lookstream/events'
import { createKafka, createProducer, ensureTopics, type KafkaClient, type LookstreamProducer } from '@lookstream/kafka'
import {
  HARNESS_S3_CREDENTIALS,
  loadLocalKafka,
  s3Client,
  waitFor,
  startLocalKafkaTracked,
  startRedis,
  startRedisCluster,
  type LocalKafka,
} from '@lookstream/testing'
import { parse } from 'csv-parse/sync'
import { Cluster, Redis } from 'ioredis'
import { randomUUID } from 'node:crypto'
import { pino } from 'pino'
import { createBucket, listKeys, readObject, uniqueBucket, unfinishedUploads } from './s3-helpers.ts'

// One broker and one redis-server (or a 3-master Redis Cluster) per test file (the consumer group
// lookstream.recurly-engage is fixed), the harness's S3 with a bucket per test file.
export interface EngageStack {
  kafka: LocalKafka
  /** The service's Redis settings (REDIS_URL, and REDIS_MODE / REDIS_CLUSTER_NODES on a cluster). */
  redisEnv: Record<string, string>
  redisClient: Redis | Cluster
  client: KafkaClient
  producer: LookstreamProducer
  s3: S3Client
  s3Endpoint: string
  bucket: string
  /**
   * Stops the standalone redis-server and starts it again on its port, empty (it keeps nothing on disk);
   * `whileDown` runs in between.
   */
  restartRedisEmpty(whileDown?: () => Promise<void>): Promise<void>
  stop(): Promise<void>
}

export const PARTITIONS = 4
const silent = pino({ level: 'silent' })

export async function startEngageStack(
  s3Endpoint: string,
  options: { redis: 'standalone' | 'cluster' } = { redis: 'standalone' },
): Promise<EngageStack> {
  const loaded = await loadLocalKafka()
  if ('unavailable' in loaded) throw new Error(loaded.unavailable)
  const kafka = await startLocalKafkaTracked(loaded.start, { inMemory: true, initialRebalanceDelayMs: 0 })
  let redisEnv: Record<string, string>
  let redisClient: Redis | Cluster
  let stopRedis: () => Promise<void>
  let restartRedisEmpty = (_whileDown?: () => Promise<void>): Promise<void> =>
    Promise.reject(new Error('only a standalone Redis is restarted'))
  if (options.redis === 'cluster') {
    const cluster = await startRedisCluster({ masters: 3 })
    redisEnv = { REDIS_URL: cluster.url, REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: cluster.nodes }
    redisClient = new Cluster(cluster.masters.map((m) => ({ host: '127.0.0.1', port: m.port })))
    stopRedis = () => cluster.stop()
  } else {
    let redis = await startRedis()
    redisEnv = { REDIS_URL: redis.url }
    redisClient = new Redis(redis.url)
    stopRedis = () => redis.stop()
    restartRedisEmpty = async (whileDown) => {
      await redis.stop()
      await whileDown?.()
      redis = await redis.restart()
    }
  }
  const client = createKafka({ brokers: kafka.brokers, clientId: 'engage-test', logger: silent })
  await ensureTopics(
    client,
    [...MESSAGE_TOPICS, TOPICS.sends].map((topic) => ({ topic, numPartitions: PARTITIONS })),
  )
  const producer = await createProducer(client)
  const s3 = s3Client(s3Endpoint)
  const bucket = uniqueBucket()
  await createBucket(s3, bucket)
  return {
    kafka,
    redisEnv,
    redisClient,
    client,
    producer,
    s3,
    s3Endpoint,
    bucket,
    restartRedisEmpty: (whileDown) => restartRedisEmpty(whileDown),
    async stop() {
      redisClient.disconnect()
      await producer.close().catch(() => undefined)
      await stopRedis()
      await kafka.stop()
    },
  }
}

/** The service's environment against this stack (short waits, so tests see recoveries quickly). */
export function engageEnv(stack: EngageStack, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KAFKA_BROKERS: stack.kafka.brokers,
    ...stack.redisEnv,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    DELIVERY_TOPIC_PARTITIONS: String(PARTITIONS),
    DELIVERY_BACKOFF_BASE_MS: '50',
    DELIVERY_BACKOFF_MAX_MS: '500',
    DELIVERY_REGISTRY_HEARTBEAT_MS: '500',
    DELIVERY_FILE_LINGER_MS: '200',
    DELIVERY_FILE_CHUNK_BYTES: '65536',
    DELIVERY_FILE_SWEEP_MS: '500',
    DELIVERY_FILE_LOCK_MS: '3000',
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    KAFKA_HEARTBEAT_INTERVAL_MS: '500',
    SHUTDOWN_TIMEOUT_MS: '10000',
    RECURLY_ENGAGE_S3_BUCKET: stack.bucket,
    RECURLY_ENGAGE_S3_PREFIX: 'ingest/',
    RECURLY_ENGAGE_S3_ENDPOINT: stack.s3Endpoint,
    RECURLY_ENGAGE_S3_ACCESS_KEY_ID: HARNESS_S3_CREDENTIALS.accessKeyId,
    RECURLY_ENGAGE_S3_SECRET_ACCESS_KEY: HARNESS_S3_CREDENTIALS.secretAccessKey,
    RECURLY_ENGAGE_S3_REQUEST_TIMEOUT_MS: '5000',
    ...extra,
  }
}

export interface TestSend {
  sendId: string
  startedAt: string
  messages: CanonicalMessage[]
}

/** A send of `rows` identify messages as the ingress writes them for recurly_engage. */
export function makeSend(
  rows: number,
  traits: (i: number) => Record<string, unknown>,
  connection = 'default',
): TestSend {
  const sendId = randomUUID()
  const startedAt = new Date(Date.now() - Math.floor(Math.random() * 1e9)).toISOString()
  const messages: CanonicalMessage[] = []
  for (let i = 0; i < rows; i++) {
    messages.push({
      type: 'identify',
      messageId: `${sendId}-${i}`,
      userId: `user-${i}`,
      traits: traits(i),
      context: { lookstream: { sendId, row: i, action: 'recurly_engage' } },
      timestamp: startedAt,
      integrations: { All: false, 'Recurly Engage': { connection } },
    })
  }
  return { sendId, startedAt, messages }
}

/** Produces rows keyed by user (spread over the partitions), or all to `partition` in order. */
export async function produceRows(
  stack: EngageStack,
  send: TestSend,
  from = 0,
  to = send.messages.length,
  partition?: number,
): Promise<void> {
  const pending: Promise<unknown>[] = []
  for (let i = from; i < to; i++) {
    const message = send.messages[i]!
    pending.push(
      stack.producer.send({
        topic: TOPICS.identify,
        key: message.userId ?? null,
        ...(partition === undefined ? {} : { partition }),
        value: JSON.stringify(message),
        headers: headersFor(message, { producer: 'ingress', sendId: send.sendId }),
      }),
    )
  }
  await Promise.all(pending)
}

/** The send record the ingress keeps, as it is once the send finished. */
export async function recordSend(stack: EngageStack, send: TestSend, accepted: number, status = 'succeeded') {
  await stack.redisClient.hset(sendRecordKey(send.sendId), {
    send_id: send.sendId,
    action: 'recurly_engage',
    destination: 'recurly-engage',
    connection: 'default',
    status,
    accepted: String(accepted),
    started_at: send.startedAt,
  })
  await stack.redisClient.expire(sendRecordKey(send.sendId), 3600)
}

export async function finishSend(
  stack: EngageStack,
  send: TestSend,
  accepted: number,
  status: 'succeeded' | 'failed' = 'succeeded',
  error?: string,
): Promise<void> {
  await recordSend(stack, send, accepted, status)
  await stack.producer.send({
    topic: TOPICS.sends,
    key: send.sendId,
    value: JSON.stringify({
      type: 'send',
      phase: 'finished',
      sendId: send.sendId,
      at: new Date().toISOString(),
      producer: 'ingress',
      destination: 'recurly-engage',
      action: 'recurly_engage',
      connection: 'default',
      status,
      counts: { received: accepted, accepted, rejected: 0, produced: accepted },
      startedAt: send.startedAt,
      finishedAt: new Date().toISOString(),
      ...(error === undefined ? {} : { error }),
    }),
    headers: { [HEADERS.producer]: 'ingress', [HEADERS.sendId]: send.sendId, [HEADERS.schema]: 'send.v1' },
  })
}

export function expectedName(send: TestSend): string {
  const stamp = send.startedAt.replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')
  return `ingest/traits_${stamp}.csv`
}

export interface BucketState {
  files: string[]
  staged: string[]
  unfinished: number
}

export async function bucketState(stack: EngageStack): Promise<BucketState> {
  return {
    files: await listKeys(stack.s3, stack.bucket, 'ingest/'),
    staged: await listKeys(stack.s3, stack.bucket, 'lookstream-staging/'),
    unfinished: await unfinishedUploads(stack.s3, stack.bucket),
  }
}

export async function readCsv(stack: EngageStack, key: string): Promise<{ bytes: Buffer; records: string[][] }> {
  const bytes = await readObject(stack.s3, stack.bucket, key)
  if (bytes === undefined) throw new Error(`no object ${key}`)
  const records: string[][] = parse(bytes)
  return { bytes, records }
}

export async function sendRecord(stack: EngageStack, sendId: string): Promise<Record<string, string>> {
  return stack.redisClient.hgetall(sendRecordKey(sendId))
}

/**
 * Waits until the service recorded the send's file, and returns its key. Read the object only then: s3rver (unlike
 * S3) writes an object's file in place, so it can be seen before the upload that writes it has completed.
 */
export async function waitForFile(stack: EngageStack, send: TestSend, timeoutMs = 30_000): Promise<string> {
  const location = await waitFor(async () => (await sendRecord(stack, send.sendId)).file, {
    timeoutMs,
    message: 'the send record names its file',
  })
  return location.replace(`s3://${stack.bucket}/`, '')
}
