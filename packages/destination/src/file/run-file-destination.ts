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
} from '@lookstream/config'
import { HEADERS, MESSAGE_TOPICS, TOPICS, dlqTopic, type DestinationId } from '@lookstream/events'
import {
  createKafka,
  createProducer,
  ensureTopics,
  runConsumer,
  type ConsumedRecord,
  type ConsumerBatch,
  type ConsumerRunner,
} from '@lookstream/kafka'
import { createLogger, createService } from '@lookstream/service'
import { checkRedisAtStart, createRedis } from '@lookstream/redis'
import { randomUUID } from 'node:crypto'
import { registerWhileRunning } from '../registration.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import { Type, type Static, type TObject } from 'typebox'
import { backoffDelay } from '../backoff.ts'
import { DeliveryEnv } from '../delivery-config.ts'
import type { FileConnection, FileDestination, FileSink } from '../destination.ts'
import { PermanentError, type DestinationErrorCode } from '../errors.ts'
import { failureHeaders, historyOf } from '../failure-headers.ts'
import { createDestinationMetrics } from '../metrics.ts'
import { routeRecord } from '../route-record.ts'
import type { RunDestinationOptions, RunningDestination } from '../run-destination.ts'
import { HeaderMismatch, RowCountMismatch, composeBody, listChunks, type ChunkReadRetry } from './compose.ts'
import { FileEnv } from './file-config.ts'
import { createFileMetrics } from './file-metrics.ts'
import { SendStates, type CloseDetails, type SendState } from './send-state.ts'
import { ChunkWriter, SEND_ID_PATTERN, chunkKey, sendPrefix } from './staged-chunk.ts'

export const FileRuntimeConfig = Type.Object({
  ...KafkaEnv.properties,
  ...RedisEnv.properties,
  ...HttpEnv.properties,
  ...LogEnv.properties,
  ...DeliveryEnv.properties,
  ...FileEnv.properties,
})
export type FileRuntimeConfig = Static<typeof FileRuntimeConfig>

const MAX_REASONS = 5
/** Tries of one read step of composing (a staged chunk, the listing, the name check) before the compose gives up. */
const COMPOSE_STEP_ATTEMPTS = 5

interface OpenChunk {
  slot: string
  sendId: string
  topic: string
  partition: number
  connection: FileConnection
  columnsKey: string
  writer: ChunkWriter
  offsets: string[]
  timer: NodeJS.Timeout
}

interface Rejection {
  record: ConsumedRecord
  sendId: string | undefined
  reason: string
  code: DestinationErrorCode
}

class Stopped extends Error {}

/**
 * Runs a file destination as a service (docs/adr/0019-file-destination-gathering.md): consumes the canonical
 * topics and lookstream.sends.v1 in group `lookstream.<name>`, stages the rows of each send durably through the
 * connection's sink in chunks per source partition (offsets are committed once the chunk holding them is
 * written), and publishes one complete file per send, atomically, once the ingress finished it and every row it
 * accepted is staged. Exposes /healthz, /readyz and /metrics; registers in the destination registry.
 */
export async function runFileDestination<Config extends TObject, Conn extends FileConnection>(
  destination: FileDestination<Config, Conn>,
  options: RunDestinationOptions = {},
): Promise<RunningDestination> {
  const load = <T extends TObject>(schema: T) =>
    options.env === undefined ? loadConfigOrExit(schema) : loadConfig(schema, options.env)
  const config = load(FileRuntimeConfig)
  const own = load(destination.config)
  const kafkaSecurity =
    options.env === undefined ? orExit(() => resolveKafkaSecurity(config)) : resolveKafkaSecurity(config)
  const redisConnection =
    options.env === undefined ? orExit(() => resolveRedisSettings(config)) : resolveRedisSettings(config)
  const name = destination.name as DestinationId
  const log = createLogger({ name: `lookstream-${name}`, level: config.LOG_LEVEL })
  const connections = destination.connections(own)
  if (connections.size === 0) throw new Error(`${name}: no connection configured (see the service README)`)
  const sinks = new Map<string, FileSink>()
  for (const [connectionName, connection] of connections) sinks.set(connectionName, destination.openSink(connection))

  const service = createService({ name, config, logger: log })
  const metrics = createDestinationMetrics(service.registry)
  const fileMetrics = createFileMetrics(service.registry)
  const labels = { destination: name }
  // Standalone, Sentinel or Cluster: every script below touches the keys of one send (one cluster slot).
  const redis = createRedis(redisConnection, {
    failFast: true,
    maxRetriesPerRequest: 1,
    connectionName: `lookstream-${name}`,
  })
  redis.on('error', () => {
    // Reported by the readiness check and the retried operations' warnings, not once per reconnect attempt.
  })
  metrics.redisAvailable.set(labels, 1)
  for (const connection of connections.keys()) metrics.delivered.inc({ destination: name, connection }, 0)
  for (const outcome of ['published', 'failed', 'empty']) fileMetrics.files.inc({ ...labels, outcome }, 0)
  service.addReadinessCheck('redis', () => {
    if (redis.status !== 'ready') throw new Error(`redis ${redis.status}`)
  })
  try {
    // Waits for the first connection (a Redis that is down is retried later); wrong credentials or TLS end here.
    await checkRedisAtStart(redis, redisConnection)
  } catch (err) {
    redis.disconnect()
    throw err
  }

  const states = new SendStates(redis, name, config.DELIVERY_FILE_STATE_TTL_SECONDS)
  const writerId = randomUUID().slice(0, 8)
  const controller = new AbortController()
  const signal = controller.signal
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID ?? `lookstream-${name}`,
    logger: log,
    security: kafkaSecurity,
  })
  const dlq = dlqTopic(name)
  const topics = [...MESSAGE_TOPICS, TOPICS.sends]
  let producer: Awaited<ReturnType<typeof createProducer>>
  try {
    await ensureTopics(
      kafka,
      [...topics, dlq].map((topic) => ({ topic, numPartitions: config.DELIVERY_TOPIC_PARTITIONS })),
    )
    producer = await createProducer(kafka)
  } catch (err) {
    redis.disconnect()
    throw err
  }

  /**
   * Runs `operation` until it succeeds, or `attempts` times: composing tries each read step a few times, so one
   * failed S3 request does not start the whole compose again, and a lasting failure (a denied read) ends the compose
   * rather than hold the send's lease forever (the sweep tries again later). Only a shutdown ends it early
   * (rejecting with Stopped).
   */
  async function retrying<T>(operation: string, run: () => Promise<T>, attempts = Infinity): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new Stopped(operation)
      try {
        return await run()
      } catch (err) {
        if (signal.aborted) throw new Stopped(operation)
        if (attempt >= attempts) {
          fileMetrics.writeErrors.inc({ ...labels, operation })
          throw err
        }
        await failedOnce(operation, attempt, err)
      }
    }
  }

  /** Counts a failed attempt, says the first (and every tenth), and waits out its backoff. */
  function failedOnce(operation: string, attempt: number, err: unknown): Promise<void> {
    fileMetrics.writeErrors.inc({ ...labels, operation })
    if (attempt === 1 || attempt % 10 === 0) log.warn({ err, operation, attempt }, 'storage operation failed; retrying')
    const delay = backoffDelay(attempt, {
      baseMs: config.DELIVERY_BACKOFF_BASE_MS,
      maxMs: config.DELIVERY_BACKOFF_MAX_MS,
    })
    return sleep(delay, undefined, { signal }).catch(() => {
      throw new Stopped(operation)
    })
  }

  /** Reads of a staged chunk while composing: counted, said and spaced like the other steps. */
  const chunkReadRetry: ChunkReadRetry = {
    attempts: COMPOSE_STEP_ATTEMPTS,
    wait: (attempt, err) => failedOnce('read', attempt, err),
  }

  const consumerRef: { runner?: ConsumerRunner } = {}
  let joined = false
  const markDone = (record: { topic: string; partition: number; offset: string }) =>
    consumerRef.runner?.markDone(record)

  // ---- Staging: rows are held per (send, source partition) until a chunk is full or has lingered. ----
  const openChunks = new Map<string, OpenChunk>()
  let buffered = 0
  const backpressured = new Map<string, { topic: string; partition: number }>()
  const writes = new Set<Promise<void>>()
  let writing = 0
  const waitingWrites: (() => void)[] = []

  const resumeBackpressured = () => {
    if (buffered > config.DELIVERY_FILE_MAX_BUFFERED_BYTES / 2 || consumerRef.runner === undefined) return
    for (const [key, { topic, partition }] of backpressured) {
      backpressured.delete(key)
      consumerRef.runner.resume(topic, partition)
    }
  }

  function flush(chunk: OpenChunk): void {
    if (openChunks.get(chunk.slot) !== chunk) return
    openChunks.delete(chunk.slot)
    clearTimeout(chunk.timer)
    const task = writeChunk(chunk)
      .catch((err: unknown) => {
        // Stopped: the rows stay uncommitted and are staged again after the restart.
        if (!(err instanceof Stopped)) log.error({ err }, 'staging a chunk failed')
      })
      .finally(() => {
        buffered -= chunk.writer.capacity
        fileMetrics.bufferedBytes.set(labels, buffered)
        resumeBackpressured()
      })
    writes.add(task)
    void task.finally(() => writes.delete(task))
  }

  async function writeChunk(chunk: OpenChunk): Promise<void> {
    while (writing >= config.DELIVERY_FILE_MAX_CONCURRENT_WRITES) {
      await new Promise<void>((wake) => waitingWrites.push(wake))
    }
    writing++
    try {
      const sink = sinks.get(chunk.connection.name)!
      const key = chunkKey(chunk.sendId, chunk.topic, chunk.partition, chunk.offsets[0]!, writerId)
      const body = chunk.writer.body()
      await retrying('stage', () => sink.putStaged(key, body))
      const state = await retrying('count', () => states.staged(chunk.sendId, chunk.connection.name, chunk.writer.rows))
      fileMetrics.chunksStaged.inc(labels)
      fileMetrics.rowsStaged.inc(labels, chunk.writer.rows)
      if (state.outcome !== undefined) {
        // Rows of a send that is already closed (a replay): nothing to add to its file.
        await sink.deleteStaged([key]).catch(() => undefined)
      }
      for (const offset of chunk.offsets) markDone({ topic: chunk.topic, partition: chunk.partition, offset })
      if (isReady(state)) triggerCompose(chunk.sendId)
    } finally {
      writing--
      waitingWrites.shift()?.()
    }
  }

  async function reject(rejections: readonly Rejection[]): Promise<void> {
    if (rejections.length === 0) return
    const now = Date.now()
    await retrying('dead-letter', () =>
      Promise.all(
        rejections.map(({ record, reason, code }) =>
          producer.send({
            topic: dlq,
            key: record.key,
            value: record.value ?? Buffer.alloc(0),
            headers: failureHeaders(record, historyOf(record), {
              error: reason,
              errorClass: 'permanent',
              code,
              attempts: 0,
              firstAttemptAt: now,
              lastAttemptAt: now,
            }),
          }),
        ),
      ),
    )
    for (const { record, sendId, reason, code } of rejections) {
      metrics.deadLettered.inc({ destination: name, reason: code })
      if (sendId !== undefined) {
        await retrying('reject', () =>
          states.reject(sendId, `${record.topic}:${record.partition}:${record.offset}`, `${code}: ${reason}`),
        )
      }
      markDone(record)
    }
  }

  async function stageRecords(batch: ConsumerBatch): Promise<void> {
    const rejections: Rejection[] = []
    let skipped = 0
    for (const record of batch.records) {
      const route = routeRecord(record, name)
      if (route.kind === 'skip') {
        skipped++
        markDone(record)
        continue
      }
      const headerSendId = record.headers[HEADERS.sendId]
      const sendId = route.kind === 'deliver' ? route.sendId : headerSendId
      const validSendId = sendId !== undefined && SEND_ID_PATTERN.test(sendId) ? sendId : undefined
      const refuse = (reason: string, code: DestinationErrorCode) =>
        rejections.push({ record, sendId: validSendId, reason, code })
      if (route.kind === 'invalid') {
        refuse(route.reason, 'LS_DEST_INVALID_MESSAGE')
        continue
      }
      if (validSendId === undefined) {
        refuse(
          sendId === undefined
            ? 'message has no send id: a file destination writes one file per send'
            : 'send id is not 1-128 letters, digits, ".", "_" or "-"',
          'LS_DEST_INVALID_MESSAGE',
        )
        continue
      }
      const connection = connections.get(route.connection)
      if (connection === undefined) {
        refuse(`unknown connection "${route.connection}"`, 'LS_DEST_UNKNOWN_CONNECTION')
        continue
      }
      let row: ReturnType<typeof destination.toRow>
      try {
        row = destination.toRow(route.message, connection)
      } catch (err) {
        log.error({ err, topic: record.topic, offset: record.offset }, 'toRow threw')
        refuse(`mapping failed: ${(err as Error).message}`, 'LS_DEST_INTERNAL')
        continue
      }
      if (row instanceof PermanentError) {
        refuse(row.message, row.code)
        continue
      }
      const columnsKey = row.columns.join('\u0000')
      const slot = `${validSendId}\u0000${record.topic}\u0000${record.partition}`
      let chunk = openChunks.get(slot)
      if (chunk !== undefined && chunk.columnsKey !== columnsKey) {
        refuse('the row has other columns than the rows before it in the send', 'LS_DEST_UNSUPPORTED_VALUE')
        continue
      }
      if (chunk === undefined) {
        const writer = new ChunkWriter(destination.encodeHeader(row.columns), config.DELIVERY_FILE_CHUNK_BYTES)
        const created: OpenChunk = {
          slot,
          sendId: validSendId,
          topic: record.topic,
          partition: record.partition,
          connection,
          columnsKey,
          writer,
          offsets: [],
          timer: setTimeout(() => flush(created), config.DELIVERY_FILE_LINGER_MS),
        }
        chunk = created
        openChunks.set(slot, chunk)
        buffered += writer.capacity
      }
      const before = chunk.writer.capacity
      chunk.writer.addRow(record.offset, row.line)
      chunk.offsets.push(record.offset)
      buffered += chunk.writer.capacity - before
      if (chunk.writer.bytes >= config.DELIVERY_FILE_CHUNK_BYTES) flush(chunk)
    }
    if (skipped > 0) metrics.skipped.inc(labels, skipped)
    fileMetrics.bufferedBytes.set(labels, buffered)
    if (buffered >= config.DELIVERY_FILE_MAX_BUFFERED_BYTES) {
      batch.pause()
      backpressured.set(`${batch.topic}:${batch.partition}`, { topic: batch.topic, partition: batch.partition })
    }
    await reject(rejections)
  }

  // ---- Send events: the ingress's `finished` says how many rows the file must hold. ----
  async function readSendEvents(batch: ConsumerBatch): Promise<void> {
    for (const record of batch.records) {
      let event: Record<string, unknown> | undefined
      try {
        event = JSON.parse(record.value?.toString('utf8') ?? '') as Record<string, unknown>
      } catch {
        event = undefined
      }
      const counts = event?.counts as Record<string, unknown> | undefined
      if (
        event !== undefined &&
        event.type === 'send' &&
        event.phase === 'finished' &&
        event.destination === name &&
        typeof event.sendId === 'string' &&
        SEND_ID_PATTERN.test(event.sendId) &&
        (event.status === 'succeeded' || event.status === 'failed') &&
        typeof event.connection === 'string' &&
        typeof event.startedAt === 'string'
      ) {
        const sendId = event.sendId
        const accepted = typeof counts?.accepted === 'number' ? counts.accepted : 0
        const state = await retrying('finish', () =>
          states.finished(sendId, {
            status: event.status as 'succeeded' | 'failed',
            accepted,
            startedAt: event.startedAt as string,
            connection: event.connection as string,
            error: typeof event.error === 'string' ? event.error.slice(0, 500) : undefined,
          }),
        )
        log.info({ sendId, status: state.status, accepted, staged: state.staged }, 'send finished at the ingress')
        if (isReady(state)) triggerCompose(sendId)
      }
      markDone(record)
    }
  }

  const eachBatch = async (batch: ConsumerBatch): Promise<void> => {
    const last = batch.records[batch.records.length - 1]
    if (last !== undefined) {
      metrics.consumerLag.set(
        { destination: name, topic: batch.topic, partition: String(batch.partition) },
        Math.max(0, Number(batch.highWatermark) - Number(last.offset) - 1),
      )
    }
    try {
      if (batch.topic === TOPICS.sends) await readSendEvents(batch)
      else await stageRecords(batch)
    } catch (err) {
      if (!(err instanceof Stopped)) throw err
    }
  }

  // ---- Composing: one replica at a time per send (a lease in Redis), retried by the sweep. ----
  function isReady(state: SendState): boolean {
    if (state.outcome !== undefined || state.status === undefined) return false
    return state.status === 'failed' || state.rejected > 0 || state.staged >= state.accepted
  }

  const composing = new Map<string, { again: boolean }>()
  function triggerCompose(sendId: string): void {
    const running = composing.get(sendId)
    if (running !== undefined) {
      running.again = true
      return
    }
    const entry = { again: true }
    composing.set(sendId, entry)
    void (async () => {
      try {
        while (entry.again && !signal.aborted) {
          entry.again = false
          await composeLeased(sendId)
        }
      } catch (err) {
        // A shutdown cuts composing short (Redis and the sink go away): the lease lapses and another run retries.
        if (!(err instanceof Stopped) && !signal.aborted) {
          log.warn({ err, sendId }, 'composing the file failed; the sweep retries it')
        }
      } finally {
        composing.delete(sendId)
      }
    })()
  }

  async function composeLeased(sendId: string): Promise<void> {
    const token = randomUUID()
    const leaseMs = config.DELIVERY_FILE_LOCK_MS
    if (!(await states.lock(sendId, token, leaseMs))) return
    const renewing = setInterval(
      () => {
        states.renew(sendId, token, leaseMs).catch(() => undefined)
      },
      Math.floor(leaseMs / 3),
    )
    try {
      await compose(sendId)
    } finally {
      clearInterval(renewing)
      await states.unlock(sendId, token).catch(() => undefined)
    }
  }

  async function close(
    sendId: string,
    outcome: 'published' | 'failed' | 'empty',
    details: CloseDetails,
  ): Promise<void> {
    const closed = await states.close(sendId, outcome, details)
    await states.recordOutcome(sendId)
    if (!closed) return
    fileMetrics.files.inc({ ...labels, outcome })
    if (outcome === 'published') log.info({ sendId, location: details.location, rows: details.rows }, 'file published')
    else log.warn({ sendId, outcome, reason: details.reason }, 'send closed without a file')
  }

  async function cleanup(sendId: string, sink: FileSink | undefined): Promise<void> {
    if (sink !== undefined) {
      // A publish that failed (its rows turned out wrong, or S3 failed) and whose own abort did not get through
      // leaves an unfinished multipart upload; the send is closed without that file, so no later publish of the
      // name would abort it.
      const target = await states.abandonedTarget(sendId)
      if (target !== undefined) {
        const aborted = await sink.abortUnfinished(target)
        if (aborted > 0) {
          fileMetrics.unfinishedAborted.inc(labels, aborted)
          log.info({ sendId, aborted }, 'aborted the unfinished upload of a send closed without its file')
        }
      }
      let keys: string[] = []
      for await (const key of sink.listStaged(sendPrefix(sendId))) {
        keys.push(key)
        if (keys.length === 1000) {
          await sink.deleteStaged(keys)
          keys = []
        }
      }
      if (keys.length > 0) await sink.deleteStaged(keys)
    }
    await states.forget(sendId)
  }

  async function compose(sendId: string): Promise<void> {
    const state = await states.get(sendId)
    const connection = state.connection === undefined ? undefined : connections.get(state.connection)
    const sink = connection === undefined ? undefined : sinks.get(connection.name)
    if (state.outcome !== undefined) {
      // Closed by an earlier pass that may have stopped before recording it or deleting the staged chunks.
      await states.recordOutcome(sendId)
      return cleanup(sendId, sink)
    }
    if (state.status === undefined) {
      const abandonMs = config.DELIVERY_FILE_ABANDON_HOURS * 3_600_000
      if (state.firstSeenAt !== undefined && Date.now() - state.firstSeenAt > abandonMs) {
        await close(sendId, 'failed', {
          rows: 0,
          deadLettered: 0,
          reason: `the ingress never finished the send within ${config.DELIVERY_FILE_ABANDON_HOURS} h; no file is written`,
        })
        await cleanup(sendId, sink)
      }
      return
    }
    if (connection === undefined || sink === undefined) {
      await close(sendId, 'failed', {
        rows: 0,
        deadLettered: 0,
        reason: `connection "${state.connection ?? ''}" is not configured in the ${name} service; no file is written`,
      })
      return cleanup(sendId, sink)
    }
    if (state.status === 'failed') {
      const why = await states.ingressError(sendId)
      await close(sendId, 'failed', {
        rows: 0,
        deadLettered: 0,
        reason: `the send failed at the ingress${why === undefined ? '' : ` (${why})`}; no file is written`,
      })
      return cleanup(sendId, sink)
    }
    if (state.rejected > 0) {
      const reasons = await states.rejectReasons(sendId, MAX_REASONS)
      await close(sendId, 'failed', {
        rows: 0,
        deadLettered: state.rejected,
        reason: `${state.rejected} of ${state.accepted} rows could not be written (${reasons.join('; ')}); no file is written`,
      })
      return cleanup(sendId, sink)
    }
    if (state.staged < state.accepted) return
    if (state.accepted === 0) {
      await close(sendId, 'empty', { rows: 0, deadLettered: 0, reason: 'the send has no rows; no file is written' })
      return cleanup(sendId, sink)
    }
    const names = destination.objectNames({ sendId, startedAt: new Date(state.startedAt ?? Date.now()) }, connection)
    let target: string | undefined
    for (const candidate of names) {
      const holder = await retrying('published-by', () => sink.publishedBy(candidate), COMPOSE_STEP_ATTEMPTS)
      if (holder === sendId) {
        // Published before a crash kept it from being recorded: the file is complete (publishing is atomic).
        await close(sendId, 'published', {
          location: sink.locationOf(candidate),
          rows: state.accepted,
          deadLettered: 0,
        })
        metrics.delivered.inc({ destination: name, connection: connection.name }, state.accepted)
        return cleanup(sendId, sink)
      }
      if (holder === undefined) {
        target = candidate
        break
      }
    }
    if (target === undefined) {
      await close(sendId, 'failed', {
        rows: 0,
        deadLettered: 0,
        reason: `every file name for the send is taken (${names.join(', ')}); no file is written`,
      })
      return cleanup(sendId, sink)
    }
    await states.publishing(sendId, target)
    const aborted = await retrying('abort-unfinished', () => sink.abortUnfinished(target), COMPOSE_STEP_ATTEMPTS)
    if (aborted > 0) {
      fileMetrics.unfinishedAborted.inc(labels, aborted)
      log.info({ sendId, aborted }, 'aborted the unfinished upload of an interrupted publish')
    }
    const started = Date.now()
    const chunks = await retrying('list', () => listChunks(sink, sendId), COMPOSE_STEP_ATTEMPTS)
    log.info({ sendId, chunks: chunks.length, rows: state.accepted }, 'composing the file')
    let failure: unknown
    const body = composeBody(sink, chunks, state.accepted, chunkReadRetry)
    body.once('error', (err) => {
      failure = err
    })
    try {
      await sink.publish(target, body, sendId)
    } catch (err) {
      const cause = failure ?? err
      if (cause instanceof RowCountMismatch && cause.rows < state.accepted) {
        // Counted rows include ones staged twice around a crash: the rest is still on its way.
        log.info({ sendId, rows: cause.rows, accepted: state.accepted }, 'not every row is staged yet')
        return
      }
      if (cause instanceof RowCountMismatch || cause instanceof HeaderMismatch) {
        const reason =
          cause instanceof HeaderMismatch
            ? `${cause.message}; no file is written`
            : `the send has more rows than the ${state.accepted} the ingress accepted; no file is written`
        await close(sendId, 'failed', { rows: 0, deadLettered: 0, reason })
        return cleanup(sendId, sink)
      }
      throw cause
    }
    fileMetrics.publishSeconds.observe(labels, (Date.now() - started) / 1000)
    metrics.delivered.inc({ destination: name, connection: connection.name }, state.accepted)
    await close(sendId, 'published', { location: sink.locationOf(target), rows: state.accepted, deadLettered: 0 })
    await cleanup(sendId, sink)
  }

  async function sweep(): Promise<void> {
    const open = await states.openSends()
    for (const sendId of open) {
      if (signal.aborted) return
      if (composing.has(sendId)) continue
      triggerCompose(sendId)
    }
  }
  let sweeping = false
  const sweepTimer = setInterval(() => {
    if (sweeping) return
    sweeping = true
    sweep()
      .catch((err: unknown) => log.debug({ err }, 'sweep failed'))
      .finally(() => {
        sweeping = false
      })
  }, config.DELIVERY_FILE_SWEEP_MS)
  sweepTimer.unref()

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
    maxBytesPerPartition: config.DELIVERY_FILE_FETCH_BYTES_PER_PARTITION,
    onAssignment: () => {
      joined = true
    },
  })
  consumerRef.runner = consumer
  service.addReadinessCheck('kafka', () => {
    if (!joined) throw new Error('not yet in consumer group')
  })

  const drainTimeoutMs = Math.max(1000, Math.floor((config.SHUTDOWN_TIMEOUT_MS ?? 10_000) * 0.6))
  service.app.addHook('onClose', async () => {
    clearInterval(sweepTimer)
    await consumer.stop({
      drain: async () => {
        // Stage what is held, so its offsets can be committed; after the grace period, writes still retrying are
        // given up and their rows staged again after the restart.
        const grace = setTimeout(() => controller.abort(new Error('shutting down')), drainTimeoutMs)
        try {
          for (const chunk of [...openChunks.values()]) flush(chunk)
          await Promise.all([...writes])
        } finally {
          clearTimeout(grace)
        }
      },
    })
    controller.abort(new Error('shut down'))
    await producer.close()
    redis.disconnect()
  })

  // Registered once it can deliver.
  await registerWhileRunning(
    service,
    redis,
    {
      destination: name,
      connections: [...connections.keys()],
      version: options.version,
      intervalMs: config.DELIVERY_REGISTRY_HEARTBEAT_MS,
    },
    log,
  )
  // Open sends left by an earlier process (a crash mid-compose) are picked up at once.
  void sweep().catch((err: unknown) => log.debug({ err }, 'first sweep failed'))

  const address = await service.listen()
  log.info(
    { url: address.url, topics, groupId: `lookstream.${name}`, connections: [...connections.keys()] },
    'delivering files',
  )
  return { service, address, config: config as unknown as RunningDestination['config'], close: () => service.close() }
}
