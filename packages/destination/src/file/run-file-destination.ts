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
  classifyKafkaStartError,
  createKafka,
  createProducer,
  ensureTopics,
  runConsumer,
  verifyTopics,
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
import { createDestinationMetrics, PartitionLag } from '../metrics.ts'
import { RedisGate } from '../redis-gate.ts'
import { routeRecord } from '../route-record.ts'
import type { RunDestinationOptions, RunningDestination } from '../run-destination.ts'
import { HeaderMismatch, RowCountMismatch, composeBody, listChunks, type ChunkReadRetry } from './compose.ts'
import { FileEnv } from './file-config.ts'
import { createFileMetrics } from './file-metrics.ts'
import { SendStates, type ClosedFacts, type CloseDetails, type FinishedFacts, type SendState } from './send-state.ts'
import {
  ChunkWriter,
  SEND_ID_PATTERN,
  chunkKey,
  closedKey,
  finishedKey,
  readFrames,
  rejectedKey,
  sendPrefix,
  stagedObjectKind,
} from './staged-chunk.ts'

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
/** Sends a replica remembers to have a complete state (it skips their check before each staged write). */
const MAX_REMEMBERED_SENDS = 10_000
/** Rejected rows recorded in Redis per script call when a send is adopted. */
const REJECTED_PER_CALL = 500

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
  /** The connection the record names, when it names one. */
  connection: string | undefined
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
    // Reported by the readiness check, the gate below and the retried operations' warnings, not once per
    // reconnect attempt.
  })
  // The gauge follows the connection and the registry heartbeats (one warning per outage), so an idle service
  // shows an outage as a busy one does.
  const gate = new RedisGate(log, (available) => metrics.redisAvailable.set(labels, available ? 1 : 0))
  metrics.redisAvailable.set(labels, 1)
  const lag = new PartitionLag(metrics.consumerLag, name)
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
    if (config.KAFKA_TOPICS_MODE === 'verify') await verifyTopics(kafka, [...topics, dlq])
    else {
      await ensureTopics(
        kafka,
        [...topics, dlq].map((topic) => ({ topic, numPartitions: config.DELIVERY_TOPIC_PARTITIONS })),
      )
    }
    producer = await createProducer(kafka)
  } catch (err) {
    redis.disconnect()
    throw classifyKafkaStartError(err, kafkaSecurity) ?? err
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

  // ---- Redis data loss: what finishing a send needs is kept beside its chunks, and its state rebuilt from it. ----
  const completeStates = new Set<string>()
  const remember = (sendId: string) => {
    if (completeStates.size >= MAX_REMEMBERED_SENDS) completeStates.clear()
    completeStates.add(sendId)
  }

  async function stagingEmpty(sink: FileSink, sendId: string): Promise<boolean> {
    for await (const key of sink.listStaged(sendPrefix(sendId))) {
      if (stagedObjectKind(sendId, key) !== undefined) return false
    }
    return true
  }

  /**
   * Runs before anything of a send is written to its staging folder. A send without a state gets one (marked with
   * its origin) only while nothing of it is staged; a state that exists without an origin, or a staging folder that
   * already holds something while Redis has no state, means Redis lost what it knew: the send is adopted.
   */
  async function ensureState(sendId: string, connectionName: string): Promise<void> {
    if (completeStates.has(sendId)) return
    const sink = sinks.get(connectionName)!
    let origin = await retrying('state', () => states.origin(sendId))
    if (origin === 'missing' && (await retrying('list', () => stagingEmpty(sink, sendId)))) {
      origin = await retrying('state', () => states.create(sendId))
    }
    if (origin === 'complete') remember(sendId)
    else adoptSoon(sendId, connectionName)
  }

  /** A state an event just wrote that does not account for the send since its start: it is adopted. */
  function checkComplete(sendId: string, state: SendState, connectionName: string): void {
    if (state.complete) return
    completeStates.delete(sendId)
    adoptSoon(sendId, connectionName)
  }

  async function readJson(sink: FileSink, key: string): Promise<Record<string, unknown>> {
    const parts: Buffer[] = []
    for await (const part of (await sink.readStaged(key)) as AsyncIterable<Buffer>) parts.push(Buffer.from(part))
    const value: unknown = JSON.parse(Buffer.concat(parts).toString('utf8'))
    if (typeof value !== 'object' || value === null) throw new Error(`staged object ${key} is not a JSON object`)
    return value as Record<string, unknown>
  }

  function finishedFacts(value: Record<string, unknown>, key: string): FinishedFacts {
    const { status, accepted, startedAt, connection } = value
    if (
      (status !== 'succeeded' && status !== 'failed') ||
      typeof accepted !== 'number' ||
      typeof startedAt !== 'string' ||
      typeof connection !== 'string'
    ) {
      throw new Error(`staged object ${key} does not hold a send's finished fields`)
    }
    return { status, accepted, startedAt, connection }
  }

  function closedFacts(value: Record<string, unknown>, key: string): ClosedFacts {
    const { outcome, location, rows, delivered, deadLettered, connection } = value
    if (
      (outcome !== 'published' && outcome !== 'failed' && outcome !== 'empty') ||
      typeof location !== 'string' ||
      typeof rows !== 'number' ||
      typeof delivered !== 'number' ||
      typeof deadLettered !== 'number' ||
      typeof connection !== 'string'
    ) {
      throw new Error(`staged object ${key} does not hold a send's outcome`)
    }
    return { outcome, location, rows, delivered, deadLettered, connection }
  }

  async function countRows(sink: FileSink, key: string): Promise<number> {
    let rows = 0
    for await (const frame of readFrames((await sink.readStaged(key)) as AsyncIterable<Buffer>)) {
      if (frame.offset !== undefined) rows++
    }
    return rows
  }

  /** Records a staged folder's rejected rows in the send's state: how many. */
  async function restoreRejected(sendId: string, sink: FileSink, key: string): Promise<number> {
    const { rows } = await retrying('read', () => readJson(sink, key), COMPOSE_STEP_ATTEMPTS)
    if (!Array.isArray(rows)) throw new Error(`staged object ${key} does not hold rejected rows`)
    const entries = (rows as unknown[]).filter(
      (row): row is [string, string] => Array.isArray(row) && typeof row[0] === 'string' && typeof row[1] === 'string',
    )
    for (let start = 0; start < entries.length; start += REJECTED_PER_CALL) {
      const batch = entries.slice(start, start + REJECTED_PER_CALL).map(([where, code]) => ({
        where,
        // Reasons can name what a row held; only the error code is kept in the staging area.
        reason: `${code}: rejected before the send's state in Redis was lost`,
      }))
      await retrying('reject', () => states.reject(sendId, batch), COMPOSE_STEP_ATTEMPTS)
    }
    return entries.length
  }

  /**
   * Rebuilds the state of a send Redis lost from its staging folder and lets the usual path finish it: the
   * ingress's `finished` fields, the rejected rows and the rows of the staged chunks, or the outcome of a send
   * closed while its cleanup ran. A send whose state has an origin is left alone, here and in the script.
   */
  async function adopt(sendId: string, connectionName: string): Promise<void> {
    const sink = sinks.get(connectionName)!
    if ((await retrying('state', () => states.origin(sendId), COMPOSE_STEP_ATTEMPTS)) === 'complete') return
    const chunks: string[] = []
    const rejectedKeys: string[] = []
    let finishedAt: string | undefined
    let closedAt: string | undefined
    const list = async () => {
      chunks.length = 0
      rejectedKeys.length = 0
      finishedAt = undefined
      closedAt = undefined
      for await (const key of sink.listStaged(sendPrefix(sendId))) {
        const kind = stagedObjectKind(sendId, key)
        if (kind === 'chunk') chunks.push(key)
        else if (kind === 'rejected') rejectedKeys.push(key)
        else if (kind === 'finished') finishedAt = key
        else if (kind === 'closed') closedAt = key
      }
    }
    await retrying('list', list, COMPOSE_STEP_ATTEMPTS)
    // A folder holding nothing the runtime writes is not a send's.
    if (chunks.length === 0 && rejectedKeys.length === 0 && finishedAt === undefined && closedAt === undefined) return
    await retrying('state', () => states.reopen(sendId), COMPOSE_STEP_ATTEMPTS)
    let staged = 0
    let rejected = 0
    let finished: FinishedFacts | undefined
    let closed: ClosedFacts | undefined
    if (closedAt !== undefined) {
      const key = closedAt
      closed = closedFacts(await retrying('read', () => readJson(sink, key), COMPOSE_STEP_ATTEMPTS), key)
    } else {
      if (finishedAt !== undefined) {
        const key = finishedAt
        finished = finishedFacts(await retrying('read', () => readJson(sink, key), COMPOSE_STEP_ATTEMPTS), key)
      }
      for (const key of rejectedKeys) rejected += await restoreRejected(sendId, sink, key)
      for (const key of chunks) staged += await retrying('read', () => countRows(sink, key), COMPOSE_STEP_ATTEMPTS)
    }
    const facts = { connection: connectionName, staged, finished, closed }
    if (!(await retrying('adopt', () => states.adopt(sendId, facts), COMPOSE_STEP_ATTEMPTS))) return
    remember(sendId)
    const state = closed !== undefined ? 'closed' : finished !== undefined ? 'finished' : 'open'
    fileMetrics.sendsAdopted.inc({ ...labels, state })
    log.warn(
      {
        sendId,
        state,
        chunks: chunks.length,
        staged,
        rejected,
        accepted: finished?.accepted,
        outcome: closed?.outcome,
      },
      "adopted a send whose state Redis lost (it came back empty): rebuilt from the send's staging folder",
    )
    triggerCompose(sendId)
  }

  const adopting = new Set<string>()
  async function adoptOnce(sendId: string, connectionName: string): Promise<void> {
    if (adopting.has(sendId) || signal.aborted) return
    adopting.add(sendId)
    try {
      await adopt(sendId, connectionName)
    } catch (err) {
      if (!(err instanceof Stopped) && !signal.aborted) {
        log.warn({ err, sendId }, 'adopting a send failed; the next discovery retries it')
      }
    } finally {
      adopting.delete(sendId)
    }
  }

  function adoptSoon(sendId: string, connectionName: string): void {
    void adoptOnce(sendId, connectionName)
  }

  /** Lists the sends with anything staged and adopts those whose state Redis lost. */
  async function discover(): Promise<void> {
    // Nothing to compare with while Redis is away; it is looked at again as soon as Redis is back.
    if (redis.status !== 'ready') return
    for (const [connectionName, sink] of sinks) {
      for await (const sendId of sink.listStagedFolders()) {
        if (signal.aborted || redis.status !== 'ready') return
        // Asked of Redis every time: what this replica remembers may predate the loss.
        if (!SEND_ID_PATTERN.test(sendId)) continue
        await adoptOnce(sendId, connectionName)
      }
    }
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
      await ensureState(chunk.sendId, chunk.connection.name)
      await retrying('stage', () => sink.putStaged(key, body))
      const state = await retrying('count', () => states.staged(chunk.sendId, chunk.connection.name, chunk.writer.rows))
      checkComplete(chunk.sendId, state, chunk.connection.name)
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
    const bySend = new Map<string, Rejection[]>()
    for (const rejection of rejections) {
      metrics.deadLettered.inc({ destination: name, reason: rejection.code })
      if (rejection.sendId === undefined) continue
      const ofSend = bySend.get(rejection.sendId) ?? []
      ofSend.push(rejection)
      bySend.set(rejection.sendId, ofSend)
    }
    for (const [sendId, ofSend] of bySend) await recordRejected(sendId, ofSend)
    for (const { record } of rejections) markDone(record)
  }

  /**
   * Records a send's rejected rows in its staging folder (where each is and its error code, so a send whose state
   * Redis lost still counts them) and then in Redis. The staging folder is the one of the send's connection: the
   * rows' own, else the only one configured, else the one its state names; a send with none can have no file.
   */
  async function recordRejected(sendId: string, rejections: readonly Rejection[]): Promise<void> {
    const rows = rejections.map(({ record, reason, code }) => ({
      where: `${record.topic}:${record.partition}:${record.offset}`,
      reason: `${code}: ${reason}`,
      code,
    }))
    let connectionName = rejections.find((r) => r.connection !== undefined && sinks.has(r.connection))?.connection
    if (connectionName === undefined && sinks.size === 1) connectionName = [...sinks.keys()][0]
    if (connectionName === undefined) {
      const named = await retrying('state', () => states.stagedConnection(sendId))
      if (named !== undefined && sinks.has(named)) connectionName = named
    }
    const sink = connectionName === undefined ? undefined : sinks.get(connectionName)
    let key: string | undefined
    if (sink !== undefined && connectionName !== undefined) {
      const first = rejections[0]!.record
      const marker = rejectedKey(sendId, first.topic, first.partition, first.offset, writerId)
      const body = Buffer.from(JSON.stringify({ rows: rows.map(({ where, code }) => [where, code]) }))
      await ensureState(sendId, connectionName)
      await retrying('stage', () => sink.putStaged(marker, body))
      key = marker
    }
    const open = await retrying('reject', () => states.reject(sendId, rows))
    if (!open && sink !== undefined && key !== undefined) {
      // Rows of a send that is already closed (a replay): nothing to keep.
      const marker = key
      await sink.deleteStaged([marker]).catch(() => undefined)
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
        rejections.push({
          record,
          sendId: validSendId,
          connection: route.kind === 'deliver' ? route.connection : undefined,
          reason,
          code,
        })
      if (route.kind === 'invalid') {
        refuse(route.reason, 'LS_DEST_INVALID_MESSAGE')
        continue
      }
      if (validSendId === undefined) {
        // Without a send id the message is not one this destination takes (it writes a file per Looker send), not
        // an invalid one: another producer's message routed here by "All".
        if (sendId === undefined) {
          refuse(
            "message has no send id: a file destination writes one file per Looker send and takes only the ingress's sends",
            'LS_DEST_UNSUPPORTED_MESSAGE',
          )
        } else refuse('send id is not 1-128 letters, digits, ".", "_" or "-"', 'LS_DEST_INVALID_MESSAGE')
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
        const connectionName = event.connection
        const sink = sinks.get(connectionName)
        if (sink !== undefined) {
          // Kept beside the send's chunks before the event's offset can be committed: a send whose state Redis
          // loses afterwards is still known to be finished.
          const facts: FinishedFacts = {
            status: event.status,
            accepted,
            startedAt: event.startedAt,
            connection: connectionName,
          }
          await ensureState(sendId, connectionName)
          await retrying('stage', () => sink.putStaged(finishedKey(sendId), Buffer.from(JSON.stringify(facts))))
        }
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
        if (sink !== undefined) {
          if (state.outcome !== undefined) {
            // A replayed event of a closed send: its staging folder is deleted (or being deleted) already.
            await sink.deleteStaged([finishedKey(sendId)]).catch(() => undefined)
          } else {
            checkComplete(sendId, state, connectionName)
          }
        }
        if (isReady(state)) triggerCompose(sendId)
      }
      markDone(record)
    }
  }

  const eachBatch = async (batch: ConsumerBatch): Promise<void> => {
    const last = batch.records[batch.records.length - 1]
    if (last !== undefined) lag.set(batch.topic, batch.partition, batch.highWatermark, last.offset)
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
      // The outcome stays in the staging folder until the rest of it is deleted: a send whose state Redis loses
      // mid-cleanup is adopted as closed (and its cleanup finished), never composed again from what is left.
      const closed = await states.closedFacts(sendId)
      if (closed !== undefined) await sink.putStaged(closedKey(sendId), Buffer.from(JSON.stringify(closed)))
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
        if (key === closedKey(sendId)) continue
        keys.push(key)
        if (keys.length === 1000) {
          await sink.deleteStaged(keys)
          keys = []
        }
      }
      if (keys.length > 0) await sink.deleteStaged(keys)
      await sink.deleteStaged([closedKey(sendId)])
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
  let discovering = false
  let discoverAgain = false
  const runDiscovery = (): void => {
    if (discovering) {
      discoverAgain = true
      return
    }
    discovering = true
    discoverAgain = false
    discover()
      .catch((err: unknown) => log.debug({ err }, 'discovering staged sends failed'))
      .finally(() => {
        discovering = false
        if (discoverAgain && !signal.aborted) runDiscovery()
      })
  }
  const discoverTimer = setInterval(runDiscovery, config.DELIVERY_FILE_DISCOVER_MS)
  discoverTimer.unref()
  // A Redis that was unreachable may come back without its data (restarted without persistence): the sends it
  // lost are looked for at once rather than at the next listing. A failover inside a cluster that keeps the
  // connection is found by the periodic listing.
  let redisWasReady = true
  redis.on('close', () => {
    redisWasReady = false
    if (!signal.aborted) gate.report(false)
  })
  redis.on('ready', () => {
    gate.report(true)
    if (redisWasReady) return
    redisWasReady = true
    if (!signal.aborted) runDiscovery()
  })

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
    onAssignment: (partitions) => {
      joined = true
      lag.keepOnly(partitions)
    },
  })
  consumerRef.runner = consumer
  service.addReadinessCheck('kafka', () => {
    if (!joined) throw new Error('not yet in consumer group')
  })

  const drainTimeoutMs = Math.max(1000, Math.floor((config.SHUTDOWN_TIMEOUT_MS ?? 10_000) * 0.6))
  service.app.addHook('onClose', async () => {
    clearInterval(sweepTimer)
    clearInterval(discoverTimer)
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
      onBeat: (ok, err) => {
        if (!signal.aborted) gate.report(ok, err)
      },
    },
    log,
  )
  // Open sends left by an earlier process (a crash mid-compose) are picked up at once.
  void sweep().catch((err: unknown) => log.debug({ err }, 'first sweep failed'))
  runDiscovery()

  const address = await service.listen()
  log.info(
    { url: address.url, topics, groupId: `lookstream.${name}`, connections: [...connections.keys()] },
    'delivering files',
  )
  return { service, address, config: config as unknown as RunningDestination['config'], close: () => service.close() }
}
