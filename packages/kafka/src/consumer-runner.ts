import { type Consumer, type KafkaMessage } from 'kafkajs'
import { type Logger } from 'pino'
import { type KafkaClient } from './create-kafka.ts'
import { fromKafkaHeaders, type RecordHeaders } from './headers.ts'
import { KafkaError } from './kafka-error.ts'
import { PartitionOffsets } from './partition-offsets.ts'

export interface TopicPartition {
  topic: string
  partition: number
}

export interface ConsumedRecord extends TopicPartition {
  offset: string
  key: Buffer | null
  value: Buffer | null
  headers: RecordHeaders
  /** Record timestamp, milliseconds since the epoch, as a string (kafkajs' representation). */
  timestamp: string
}

export interface ConsumerBatch extends TopicPartition {
  records: ConsumedRecord[]
  /** Same as runner.markDone(): usable inside the handler, and later, by whoever holds the batch. */
  markDone(record: TopicPartition & { offset: string }): void
  /** The partition's high watermark when the batch was fetched (for lag). */
  highWatermark: string
  /**
   * Leaves the records from `offset` on untaken: they are fetched again later. Pair it with pause(), or the
   * same records come straight back.
   */
  stopAt(offset: string): void
  /** Pauses this topic-partition (no more fetches) until runner.resume(). */
  pause(): void
  /** False once the runner is stopping: return soon. */
  isRunning(): boolean
  heartbeat(): Promise<void>
}

export interface PartitionState extends TopicPartition {
  paused: boolean
  /** Records handed to the handler and not yet marked done. */
  pending: number
  /** Next offset to fetch. */
  position: string | undefined
  /** Last offset committed by this runner. */
  committed: string | undefined
  highWatermark: string | undefined
}

export interface RunConsumerOptions {
  kafka: KafkaClient
  groupId: string
  topics: readonly string[]
  /** Where a group without committed offsets starts. Default false (only new records). */
  fromBeginning?: boolean
  /**
   * Called with each fetched batch of one topic-partition. Returning means every record in it (except those
   * given back with stopAt) is taken: the runner will not hand them out again in this process. A record's
   * offset is committed only after markDone() was called for it and for every record before it.
   */
  eachBatch: (batch: ConsumerBatch) => void | Promise<void>
  logger: Logger
  /** How often marked offsets are committed. Default 1000 ms. */
  commitIntervalMs?: number
  partitionsConsumedConcurrently?: number
  sessionTimeoutMs?: number
  heartbeatIntervalMs?: number
  rebalanceTimeoutMs?: number
  maxBytesPerPartition?: number
  maxWaitTimeMs?: number
  /** After every group join, with this member's partitions. */
  onAssignment?: (partitions: TopicPartition[]) => void
  /**
   * kafkajs crashed the consumer (e.g. the broker stayed away past the retries). With `willRestart` it
   * rejoins by itself; without, this runner is dead and the service should exit to be restarted.
   */
  onCrash?: (err: Error, willRestart: boolean) => void
}

export interface ConsumerRunner {
  /** Marks a handed-out record done; its offset becomes committable once everything before it is done too. */
  markDone(record: TopicPartition & { offset: string }): void
  pause(topic: string, partition: number): void
  resume(topic: string, partition: number): void
  isPaused(topic: string, partition: number): boolean
  assignment(): TopicPartition[]
  partitions(): PartitionState[]
  /** Commits the marked offsets now (also done every commitIntervalMs, on rebalance and on stop). */
  commit(): Promise<void>
  /**
   * Graceful stop: no new batches, waits for the handler calls in progress, then `drain` (finish the
   * deliveries the handler started and mark them), commits, and leaves the group.
   */
  stop(options?: { drain?: () => void | Promise<void> }): Promise<void>
}

function slot(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`
}

function toRecord(topic: string, partition: number, message: KafkaMessage): ConsumedRecord {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key ?? null,
    value: message.value ?? null,
    headers: fromKafkaHeaders(message.headers),
    timestamp: message.timestamp,
  }
}

export async function runConsumer(options: RunConsumerOptions): Promise<ConsumerRunner> {
  const log = options.logger.child({ component: 'consumer', groupId: options.groupId })
  const consumer: Consumer = options.kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 30_000,
    heartbeatInterval: options.heartbeatIntervalMs ?? 3000,
    rebalanceTimeout: options.rebalanceTimeoutMs ?? 60_000,
    maxBytesPerPartition: options.maxBytesPerPartition ?? 1024 * 1024,
    maxWaitTimeInMs: options.maxWaitTimeMs ?? 500,
    allowAutoTopicCreation: false,
  })

  const offsets = new Map<string, PartitionOffsets>()
  // The partition of the last markDone: records are marked a batch at a time, so this spares building and
  // hashing the slot key per record. Forgotten whenever the partitions' states change.
  let lastMarked: { topic: string; partition: number; state: PartitionOffsets | undefined } | undefined
  const committed = new Map<string, bigint>()
  const highWatermarks = new Map<string, string>()
  const paused = new Set<string>()
  let assigned: TopicPartition[] = []
  let stopping = false
  let handlersRunning = 0
  const idleWaiters: (() => void)[] = []
  let commitChain: Promise<void> = Promise.resolve()

  function offsetsOf(topic: string, partition: number): PartitionOffsets {
    const key = slot(topic, partition)
    let state = offsets.get(key)
    if (!state) {
      state = new PartitionOffsets()
      offsets.set(key, state)
      lastMarked = undefined
    }
    return state
  }

  async function commitNow(): Promise<void> {
    const due: { topic: string; partition: number; offset: string }[] = []
    const positions = new Map<string, bigint>()
    for (const { topic, partition } of assigned) {
      const key = slot(topic, partition)
      const position = offsets.get(key)?.commitPosition()
      if (position === undefined || position <= (committed.get(key) ?? -1n)) continue
      due.push({ topic, partition, offset: position.toString() })
      positions.set(key, position)
    }
    if (due.length === 0) return
    await consumer.commitOffsets(due)
    for (const [key, position] of positions) committed.set(key, position)
  }

  function commit(): Promise<void> {
    // One commit at a time, in order, so a slow older commit never overwrites a newer position.
    const run = commitChain.then(commitNow)
    commitChain = run.catch(() => undefined)
    return run
  }

  function commitQuietly(reason: string): void {
    commit().catch((err: unknown) => log.warn({ err, reason }, 'offset commit failed; retried on the next one'))
  }

  function markDone({ topic, partition, offset }: TopicPartition & { offset: string }): void {
    if (lastMarked === undefined || lastMarked.topic !== topic || lastMarked.partition !== partition) {
      lastMarked = { topic, partition, state: offsets.get(slot(topic, partition)) }
    }
    lastMarked.state?.markDone(BigInt(offset))
  }

  function pause(topic: string, partition: number): void {
    paused.add(slot(topic, partition))
    consumer.pause([{ topic, partitions: [partition] }])
  }

  function resume(topic: string, partition: number): void {
    paused.delete(slot(topic, partition))
    if (!stopping) consumer.resume([{ topic, partitions: [partition] }])
  }

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const next: TopicPartition[] = []
    for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
      for (const partition of partitions) next.push({ topic, partition })
    }
    const keep = new Set(next.map(({ topic, partition }) => slot(topic, partition)))
    lastMarked = undefined
    for (const key of [...offsets.keys()]) {
      if (!keep.has(key)) {
        // Revoked: its records now belong to another member; late marks for it are ignored.
        offsets.delete(key)
        committed.delete(key)
      }
    }
    for (const { topic, partition } of next) {
      // Retained with records still in the handler's hands: continue after them instead of
      // re-fetching from the committed offset, which would hand the same records out twice.
      const position = offsets.get(slot(topic, partition))?.position
      if (position !== undefined) consumer.seek({ topic, partition, offset: position.toString() })
    }
    assigned = next
    log.info({ partitions: next.length }, 'joined consumer group')
    options.onAssignment?.(next)
  })
  consumer.on(consumer.events.REBALANCING, () => commitQuietly('rebalance'))
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    log.error({ err: payload.error, restart: payload.restart }, 'consumer crashed')
    if (!payload.restart) assigned = []
    options.onCrash?.(payload.error, payload.restart)
  })

  await consumer.connect()
  await consumer.subscribe({ topics: [...options.topics], fromBeginning: options.fromBeginning ?? false })
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 1,
    eachBatch: async (payload) => {
      const { batch } = payload
      const isStale = () => payload.isStale()
      const resolveOffset = (offset: string) => payload.resolveOffset(offset)
      if (stopping || isStale()) return
      const { topic, partition } = batch
      const key = slot(topic, partition)
      highWatermarks.set(key, batch.highWatermark)
      const state = offsetsOf(topic, partition)
      const from = state.position
      // After a rejoin kafkajs may fetch records this process already handed out; they are skipped.
      const records: ConsumedRecord[] = []
      const taken: bigint[] = []
      for (const message of batch.messages) {
        const offset = BigInt(message.offset)
        if (from !== undefined && offset < from) continue
        records.push(toRecord(topic, partition, message))
        taken.push(offset)
      }
      if (records.length === 0) {
        if (batch.messages.length > 0) resolveOffset(batch.lastOffset())
        return
      }
      for (const offset of taken) state.take(offset)
      let stopAt: bigint | undefined
      handlersRunning += 1
      try {
        await options.eachBatch({
          topic,
          partition,
          records,
          markDone,
          highWatermark: batch.highWatermark,
          stopAt: (offset) => {
            const value = BigInt(offset)
            if (stopAt === undefined || value < stopAt) stopAt = value
          },
          pause: () => pause(topic, partition),
          isRunning: () => !stopping && payload.isRunning() && !isStale(),
          heartbeat: () => payload.heartbeat(),
        })
      } catch (err) {
        // The batch will be fetched again; what was already marked done stays done.
        state.untakeFrom(BigInt(records[0]!.offset))
        throw err
      } finally {
        handlersRunning -= 1
        if (handlersRunning === 0) for (const wake of idleWaiters.splice(0)) wake()
      }
      if (stopAt !== undefined) {
        state.untakeFrom(stopAt)
        if (stopAt > BigInt(records[0]!.offset)) resolveOffset((stopAt - 1n).toString())
      } else {
        state.advanceTo(BigInt(batch.lastOffset()) + 1n)
        resolveOffset(batch.lastOffset())
      }
    },
  })

  const timer = setInterval(() => commitQuietly('interval'), options.commitIntervalMs ?? 1000)
  timer.unref()

  let stopped: Promise<void> | undefined
  async function stop(stopOptions: { drain?: () => void | Promise<void> } = {}): Promise<void> {
    stopping = true
    consumer.pause(options.topics.map((topic) => ({ topic })))
    if (handlersRunning > 0) await new Promise<void>((wake) => idleWaiters.push(wake))
    try {
      await stopOptions.drain?.()
    } finally {
      clearInterval(timer)
      try {
        await commit()
      } catch (err) {
        log.warn({ err }, 'final offset commit failed; uncommitted records will be delivered again')
      }
      // disconnect() stops the fetch loop and leaves the group, so the partitions move over at once.
      await consumer.disconnect()
      log.info('consumer stopped')
    }
  }

  return {
    markDone,
    pause,
    resume,
    isPaused: (topic, partition) => paused.has(slot(topic, partition)),
    assignment: () => [...assigned],
    partitions: () =>
      assigned.map(({ topic, partition }) => {
        const key = slot(topic, partition)
        const state = offsets.get(key)
        return {
          topic,
          partition,
          paused: paused.has(key),
          pending: state?.pending ?? 0,
          position: state?.position?.toString(),
          committed: committed.get(key)?.toString(),
          highWatermark: highWatermarks.get(key),
        }
      }),
    commit: () => {
      if (stopped) return Promise.reject(new KafkaError('LS_KAFKA_CONSUMER_STOPPED', 'consumer is stopped'))
      return commit()
    },
    stop: (stopOptions) => (stopped ??= stop(stopOptions)),
  }
}
