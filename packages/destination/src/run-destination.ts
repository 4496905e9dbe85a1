import {
  HttpEnv,
  KafkaEnv,
  LogEnv,
  RedisEnv,
  loadConfig,
  loadConfigOrExit,
  orExit,
  resolveKafkaSecurity,
  resolveRedisSettings,
  type Env,
} from '@lookstream/config'
import { HEADERS, MESSAGE_TOPICS, dlqTopic, retryTopic, type DestinationId } from '@lookstream/events'
import {
  classifyKafkaStartError,
  verifyTopics,
  createKafka,
  createProducer,
  ensureTopics,
  runConsumer,
  type ConsumedRecord,
  type ConsumerBatch,
  type ConsumerRunner,
} from '@lookstream/kafka'
import { createLogger, createService, type ListenAddress, type Service } from '@lookstream/service'
import { checkRedisAtStart, createRedis } from '@lookstream/redis'
import type { Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { Type, type Static, type TObject } from 'typebox'
import { backoffDelay } from './backoff.ts'
import { Dedupe } from './dedupe.ts'
import { Deliverer } from './deliverer.ts'
import { DeliveryEnv } from './delivery-config.ts'
import type { Connection, HttpDestination } from './destination.ts'
import { HttpSender } from './http-sender.ts'
import { createDestinationMetrics, PartitionLag } from './metrics.ts'
import { processRecords, type OutboundRecord, type ProcessorDeps } from './process-records.ts'
import { RateLimiter } from './rate-limiter.ts'
import { RedisGate } from './redis-gate.ts'
import { registerWhileRunning } from './registration.ts'
import { ThrottledLog } from './throttled-log.ts'
import { UserOrder } from './user-order.ts'
import { deriveHistoryKey, recordRowFailures, type RowFailure } from '@lookstream/send-history'

/** Keeps dead-lettered rows for the send history page when the service shares the ingress's secret. */
function rowFailuresFor(
  secret: string | undefined,
  redis: Redis,
): { rowFailures?: (sendId: string, entries: readonly RowFailure[]) => Promise<unknown> } {
  if (secret === undefined) return {}
  const key = deriveHistoryKey(secret)
  return { rowFailures: (sendId, entries) => recordRowFailures(redis, sendId, entries, { key }) }
}

/** Requests in flight per lane when neither DELIVERY_MAX_IN_FLIGHT_REQUESTS nor the destination says. */
export const DEFAULT_IN_FLIGHT_REQUESTS = 4

export const RuntimeConfig = Type.Object({
  ...KafkaEnv.properties,
  ...RedisEnv.properties,
  ...HttpEnv.properties,
  ...LogEnv.properties,
  ...DeliveryEnv.properties,
})
export type RuntimeConfig = Static<typeof RuntimeConfig>

export interface RunDestinationOptions {
  /** Environment to read; process.env (exiting 1 with every config problem listed) when omitted. */
  env?: Env
  /** Announced in the destination registry (default: LOOKSTREAM_VERSION, else the runtime's version). */
  version?: string
}

export interface RunningDestination {
  service: Service
  address: ListenAddress
  config: RuntimeConfig
  /** Graceful: stop fetching, finish in-flight batches, commit, disconnect. */
  close(): Promise<void>
}

function slot(topic: string, partition: number): string {
  return `${topic}:${partition}`
}

function retryAtOf(record: ConsumedRecord): number {
  const at = Date.parse(record.headers[HEADERS.retryAt] ?? '')
  return Number.isNaN(at) ? 0 : at
}

/**
 * Runs a destination as a service: consumes the canonical topics and its retry topic in group
 * `lookstream.<name>`, delivers through the destination's pure functions, and exposes /healthz, /readyz and
 * /metrics. Shutdown (SIGTERM, or close()) finishes in-flight batches and commits before disconnecting.
 */
export async function runDestination<Config extends TObject, Conn extends Connection, Item>(
  destination: HttpDestination<Config, Conn, Item>,
  options: RunDestinationOptions = {},
): Promise<RunningDestination> {
  const load = <T extends TObject>(schema: T) =>
    options.env === undefined ? loadConfigOrExit(schema) : loadConfig(schema, options.env)
  const config = load(RuntimeConfig)
  const own = load(destination.config)
  const kafkaSecurity =
    options.env === undefined ? orExit(() => resolveKafkaSecurity(config)) : resolveKafkaSecurity(config)
  const redisConnection =
    options.env === undefined ? orExit(() => resolveRedisSettings(config)) : resolveRedisSettings(config)
  const name = destination.name as DestinationId

  const log = createLogger({ name: `lookstream-${name}`, level: config.LOG_LEVEL })
  const connections = destination.connections(own)
  if (connections.size === 0) throw new Error(`${name}: no connection configured (see the service README)`)
  const sender = new HttpSender({
    allowedHosts: destination.allowedHosts(own),
    timeoutMs: config.DELIVERY_REQUEST_TIMEOUT_MS,
    connectionsPerOrigin: config.DELIVERY_CONNECTIONS_PER_HOST,
  })
  for (const connection of connections.values()) {
    if (!sender.isAllowed(connection.endpoint)) {
      await sender.close()
      throw new Error(`${name}: connection "${connection.name}" points to a host that is not on the allowlist`)
    }
  }

  const service = createService({ name, config, logger: log })
  const metrics = createDestinationMetrics(service.registry)
  // Fail fast while disconnected: the gate below waits and retries, so nothing piles up in ioredis.
  const redis = createRedis(redisConnection, {
    failFast: true,
    maxRetriesPerRequest: 1,
    connectionName: `lookstream-${name}`,
  })
  // Cluster runs every command these use (each script and pipeline stays on one slot); their types name Redis.
  const redisCommands = redis as Redis
  redis.on('error', () => {
    // Reported through the gate (one warning per outage), not once per reconnect attempt.
  })
  const gate = new RedisGate(log, (available) => metrics.redisAvailable.set({ destination: name }, available ? 1 : 0))
  const lag = new PartitionLag(metrics.consumerLag, name)
  metrics.redisAvailable.set({ destination: name }, 1)
  // Exported from the start, so alerts and dashboards see every connection before anything happens to it.
  for (const connection of connections.keys()) {
    metrics.connectionPaused.set({ destination: name, connection }, 0)
    metrics.delivered.inc({ destination: name, connection }, 0)
  }
  service.addReadinessCheck('redis', () => {
    if (redis.status !== 'ready' || !gate.available) throw new Error(`redis ${redis.status}`)
  })

  // Give the first connection a moment, so a normal start does not begin with an "unreachable" warning; a Redis
  // that is really down is handled by the gate like any later outage. Refused credentials or TLS end the start.
  try {
    await checkRedisAtStart(redis, redisConnection)
  } catch (err) {
    redis.disconnect()
    await sender.close()
    throw err
  }

  const controller = new AbortController()
  // The connection's own state reaches the gate too: an idle service shows an outage without waiting for work.
  redis.on('close', () => {
    if (!controller.signal.aborted) gate.report(false)
  })
  redis.on('ready', () => gate.report(true))
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID ?? `lookstream-${name}`,
    logger: log,
    security: kafkaSecurity,
  })
  const retry = retryTopic(name)
  const dlq = dlqTopic(name)
  const topics = [...MESSAGE_TOPICS, retry]
  let producer: Awaited<ReturnType<typeof createProducer>>
  try {
    if (config.KAFKA_TOPICS_MODE === 'verify') await verifyTopics(kafka, [...topics, dlq])
    else {
      await ensureTopics(
        kafka,
        [...topics, dlq].map((topic) => ({ topic, numPartitions: config.DELIVERY_TOPIC_PARTITIONS })),
      )
    }
    producer = await createProducer(kafka)
  } catch (err) {
    // Nothing may keep the process alive after a failed start: the caller reports and exits.
    redis.disconnect()
    await sender.close()
    throw classifyKafkaStartError(err, kafkaSecurity) ?? err
  }

  const deliverer = new Deliverer<Conn, Item>(
    {
      destination,
      http: sender,
      rateLimiter: new RateLimiter(redis),
      dedupe: new Dedupe(redisCommands, name, config.DELIVERY_DEDUPE_TTL_SECONDS),
      redis: gate,
      metrics,
      log,
      policy: {
        quickAttempts: config.DELIVERY_QUICK_ATTEMPTS,
        backoff: { baseMs: config.DELIVERY_BACKOFF_BASE_MS, maxMs: config.DELIVERY_BACKOFF_MAX_MS },
        authBackoff: { baseMs: config.DELIVERY_BACKOFF_BASE_MS, maxMs: config.DELIVERY_AUTH_PROBE_MAX_MS },
        maxInFlightPerConnection:
          config.DELIVERY_MAX_IN_FLIGHT_REQUESTS ?? destination.inFlightRequests ?? DEFAULT_IN_FLIGHT_REQUESTS,
        ...(config.DELIVERY_LINGER_MS === undefined ? {} : { lingerMs: config.DELIVERY_LINGER_MS }),
      },
      signal: controller.signal,
    },
    { maxBatchItems: config.DELIVERY_MAX_BATCH_ITEMS },
  )

  const events = new ThrottledLog(log)
  const order = destination.orderedPerUser
    ? new UserOrder(
        redis,
        name,
        {
          releaseMs: config.DELIVERY_ORDER_RELEASE_MS,
          maxParkedPerUser: config.DELIVERY_ORDER_MAX_PARKED_PER_USER,
          maxUsers: config.DELIVERY_ORDER_MAX_USERS,
        },
        {
          parkedUsers: (count) => metrics.orderParkedUsers.set({ destination: name }, count),
          released: (reason, users) => {
            metrics.orderReleases.inc({ destination: name, reason }, users)
            events.warn(
              `order-release\u0000${reason}`,
              { destination: name, reason, users, releaseMs: config.DELIVERY_ORDER_RELEASE_MS },
              'per-user order given up for users parked too long or too often: their later messages no longer wait',
            )
          },
        },
      )
    : undefined
  if (order !== undefined) {
    metrics.orderParkedUsers.set({ destination: name }, 0)
    for (const reason of ['time', 'limit', 'capacity']) metrics.orderReleases.inc({ destination: name, reason }, 0)
  }

  const deps: ProcessorDeps<Conn, Item> = {
    destination,
    connections,
    deliverer,
    dedupe: new Dedupe(redisCommands, name, config.DELIVERY_DEDUPE_TTL_SECONDS),
    redis: gate,
    redisClient: redisCommands,
    metrics,
    log,
    events,
    ...rowFailuresFor(config.SEND_HISTORY_SECRET, redisCommands),
    retryTopic: retry,
    dlqTopic: dlq,
    retry: {
      delay: { baseMs: config.DELIVERY_RETRY_DELAY_MS, maxMs: config.DELIVERY_RETRY_MAX_DELAY_MS },
      windowMs: config.DELIVERY_RETRY_WINDOW_HOURS * 3_600_000,
    },
    quickAttempts: config.DELIVERY_QUICK_ATTEMPTS,
    produce: async (records: OutboundRecord[]) => {
      await Promise.all(
        records.map((record) =>
          producer.send({
            topic: record.topic,
            key: record.key,
            value: record.value ?? Buffer.alloc(0),
            headers: record.headers,
          }),
        ),
      )
    },
    signal: controller.signal,
    ...(order === undefined ? {} : { order }),
  }

  // Records taken from Kafka and not yet finished: bounded, by pausing the partitions that feed them.
  let inFlight = 0
  const maxInFlight = config.DELIVERY_MAX_IN_FLIGHT_MESSAGES
  const backpressured = new Map<string, { topic: string; partition: number }>()
  const retryTimers = new Map<string, NodeJS.Timeout>()
  const tasks = new Set<Promise<void>>()
  // Set once runConsumer resolved; batches can arrive before that, their completions only after.
  const consumerRef: { runner?: ConsumerRunner } = {}
  let joined = false

  const resumeBackpressured = () => {
    const runner = consumerRef.runner
    if (inFlight > maxInFlight / 2 || runner === undefined) return
    for (const [key, { topic, partition }] of backpressured) {
      backpressured.delete(key)
      if (!retryTimers.has(key)) runner.resume(topic, partition)
    }
  }

  async function processUntilSettled(records: ConsumedRecord[]): Promise<boolean[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await processRecords(records, deps)
      } catch (err) {
        if (controller.signal.aborted) return records.map(() => false)
        // The retry/DLQ records could not be written: the batch is processed again (dedupe keeps what was delivered).
        log.error({ err, records: records.length }, 'processing a batch failed; retrying it')
        await sleep(backoffDelay(attempt, { baseMs: 500, maxMs: 10_000 }), undefined, {
          signal: controller.signal,
        }).catch(() => undefined)
      }
    }
  }

  // The batches of one fetch response (one per partition, often a few dozen records each while a send streams
  // in) are processed together from the next turn of the event loop: the dedupe lookup, the send-count update and
  // the rest of the per-batch work are paid once per fetch instead of once per partition.
  let gathered: ConsumedRecord[] = []
  let gatheredFlush: NodeJS.Immediate | undefined
  function processGathered(): void {
    clearImmediate(gatheredFlush)
    gatheredFlush = undefined
    const taken = gathered
    gathered = []
    if (taken.length === 0) return
    const task = processUntilSettled(taken)
      .then((done) => {
        done.forEach((isDone, index) => {
          if (isDone) consumerRef.runner?.markDone(taken[index]!)
        })
      })
      .finally(() => {
        inFlight -= taken.length
        resumeBackpressured()
      })
    tasks.add(task)
    void task.finally(() => tasks.delete(task))
  }

  const eachBatch = (batch: ConsumerBatch): Promise<void> => {
    const key = slot(batch.topic, batch.partition)
    let records = batch.records
    const last = records[records.length - 1]
    if (last !== undefined) lag.set(batch.topic, batch.partition, batch.highWatermark, last.offset)
    if (batch.topic === retry) {
      // Parked messages wait until due: the partition pauses (no busy loop) and resumes on a timer.
      const now = Date.now()
      const index = records.findIndex((record) => retryAtOf(record) > now)
      if (index >= 0) {
        const first = records[index]!
        batch.stopAt(first.offset)
        batch.pause()
        clearTimeout(retryTimers.get(key))
        retryTimers.set(
          key,
          setTimeout(
            () => {
              retryTimers.delete(key)
              if (!backpressured.has(key)) consumerRef.runner?.resume(batch.topic, batch.partition)
            },
            // Re-checked at least every minute: a far-future (or garbled) retry-at never overflows the timer.
            Math.min(retryAtOf(first) - now, 60_000),
          ),
        )
        records = records.slice(0, index)
      }
    }
    if (records.length === 0) return Promise.resolve()
    inFlight += records.length
    for (const record of records) gathered.push(record)
    gatheredFlush ??= setImmediate(processGathered)
    if (inFlight >= maxInFlight) {
      batch.pause()
      backpressured.set(key, { topic: batch.topic, partition: batch.partition })
    }
    return Promise.resolve()
  }

  const consumer = await runConsumer({
    kafka,
    groupId: `lookstream.${name}`,
    topics,
    fromBeginning: true,
    eachBatch,
    logger: log,
    partitionsConsumedConcurrently: config.DELIVERY_PARTITIONS_CONCURRENTLY,
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: config.KAFKA_HEARTBEAT_INTERVAL_MS,
    maxWaitTimeMs: config.KAFKA_FETCH_MAX_WAIT_MS,
    onAssignment: (partitions) => {
      joined = true
      lag.keepOnly(partitions)
    },
  })
  consumerRef.runner = consumer
  // Ready once in the group: a replica beyond the partition count legitimately holds none.
  service.addReadinessCheck('kafka', () => {
    if (!joined) throw new Error('not yet in consumer group')
  })

  const drainTimeoutMs = Math.max(1000, Math.floor((config.SHUTDOWN_TIMEOUT_MS ?? 10_000) * 0.6))
  service.app.addHook('onClose', async () => {
    for (const timer of retryTimers.values()) clearTimeout(timer)
    retryTimers.clear()
    await consumer.stop({
      drain: async () => {
        // Finish what is in flight; after the grace period, waits (backoff, Retry-After, rate limit) are cut
        // short and those messages stay uncommitted, to be delivered after the restart.
        const grace = setTimeout(() => controller.abort(new Error('shutting down')), drainTimeoutMs)
        try {
          processGathered()
          await deliverer.drain()
          await Promise.all([...tasks])
        } finally {
          clearTimeout(grace)
        }
      },
    })
    controller.abort(new Error('shut down'))
    await producer.close()
    await sender.close()
    redis.disconnect()
  })

  // Registered once it can deliver.
  await registerWhileRunning(
    service,
    redis,
    {
      destination: name,
      connections: [...connections.keys()],
      ...(destination.publicSettings === undefined
        ? {}
        : {
            settings: Object.fromEntries(
              [...connections].map(([connectionName, connection]) => [
                connectionName,
                destination.publicSettings!(connection),
              ]),
            ),
          }),
      version: options.version,
      intervalMs: config.DELIVERY_REGISTRY_HEARTBEAT_MS,
      onBeat: (ok, err) => {
        if (!controller.signal.aborted) gate.report(ok, err)
      },
    },
    log,
  )

  const address = await service.listen()
  log.info(
    { url: address.url, topics, groupId: `lookstream.${name}`, connections: [...connections.keys()] },
    'delivering',
  )
  return { service, address, config, close: () => service.close() }
}
