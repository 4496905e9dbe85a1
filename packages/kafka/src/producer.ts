import { Partitioners, type Message, type Producer, type RecordMetadata, type TopicMessages } from 'kafkajs'
import { compressionType, type ProducerCompression } from './compression.ts'
import { type KafkaClient } from './create-kafka.ts'
import { type RecordHeaders } from './headers.ts'
import { KafkaError } from './kafka-error.ts'

export interface ProduceRecord {
  topic: string
  key?: string | Buffer | null
  value: Buffer | string
  /** Read when the batch is encoded, after send() returned: not to be changed after (it may be shared). */
  headers?: RecordHeaders
  /** Normally left out: the partition then follows from the key (murmur2, as the Java client). */
  partition?: number
}

export interface RecordAck {
  topic: string
  partition: number
  offset: string
}

export interface ProducerBatchInfo {
  messages: number
  bytes: number
  seconds: number
  ok: boolean
}

export interface ProducerMetrics {
  /** Called once per sendBatch, after the broker acknowledged it or it failed. */
  onBatch(info: ProducerBatchInfo): void
}

export interface ProducerOptions {
  /** Bound on bytes accepted but not yet acknowledged (queued + in flight). Default 16 MiB. */
  maxInFlightBytes?: number
  /** Bound on records accepted but not yet acknowledged. Default 20,000. */
  maxInFlightMessages?: number
  /** Most records in one sendBatch. Default 5,000. */
  maxBatchMessages?: number
  /** Most (estimated) bytes in one sendBatch; keep under the broker's message.max.bytes. Default 900 KiB. */
  maxBatchBytes?: number
  /**
   * Largest record accepted (estimated bytes). A larger one is refused by send() up front: the broker
   * would reject it with MESSAGE_TOO_LARGE and take the whole batch around it down too. Default 1,000,000
   * (the broker's default message.max.bytes is 1,048,588 per record batch).
   */
  maxRecordBytes?: number
  /** How long the first record of a batch may wait for company. Default 5 ms. */
  lingerMs?: number
  /**
   * Attempts after the first for one sendBatch (each attempt also retries the connection, by createKafka's
   * `retries`). With both at their default of 5, a send fails about 35 s after the broker went away.
   */
  retries?: number
  /** Produce request timeout. Default 30 s. */
  timeoutMs?: number
  /** Record batch compression; default none. zstd needs brokers of Kafka 2.1 or later. */
  compression?: ProducerCompression
  metrics?: ProducerMetrics
}

export interface ProducerStats {
  /** Records accepted by send() and not yet acknowledged or failed. */
  pendingMessages: number
  pendingBytes: number
  /** Callers inside send() waiting for capacity. */
  waitingSends: number
  batchInFlight: boolean
}

export interface LookstreamProducer {
  /** Resolves when Kafka acknowledged the record (acks=all), rejects with the cause otherwise. Waits for capacity first. */
  send(record: ProduceRecord): Promise<RecordAck>
  /** True when send() would accept a record without waiting. */
  isWritable(): boolean
  /** Resolves when send() would accept a record without waiting. */
  whenWritable(): Promise<void>
  /** Resolves when every record accepted so far has been acknowledged or has failed. */
  flush(): Promise<void>
  /** Rejects new sends, flushes, then disconnects. */
  close(): Promise<void>
  stats(): ProducerStats
}

interface Entry {
  topic: string
  message: Message
  bytes: number
  resolve: (ack: RecordAck) => void
  reject: (err: unknown) => void
}

interface Waiter {
  bytes: number
  wake: () => void
}

// Record overhead in a v2 record batch (varints, attributes, deltas) is a few bytes; 64 is a safe estimate.
const RECORD_OVERHEAD = 64

// Base offsets up to here are counted as Numbers: exact, with room for far more records than a batch holds.
const MAX_SAFE_OFFSET = BigInt(Number.MAX_SAFE_INTEGER) - 2n ** 32n

function sizeOfHeaders(headers: Record<string, string>): number {
  let bytes = 0
  for (const name in headers) bytes += Buffer.byteLength(name) + Buffer.byteLength(headers[name]!) + 2
  return bytes
}

// A frozen headers object cannot change, so its size is measured once (producers such as the ingress share
// one per message kind across every record of a send).
const frozenHeaderSizes = new WeakMap<Record<string, string>, number>()

function sizeOf(record: ProduceRecord): number {
  let bytes = RECORD_OVERHEAD + record.topic.length
  bytes += typeof record.value === 'string' ? Buffer.byteLength(record.value) : record.value.length
  if (record.key !== undefined && record.key !== null) {
    bytes += typeof record.key === 'string' ? Buffer.byteLength(record.key) : record.key.length
  }
  const headers = record.headers
  if (headers !== undefined) {
    if (Object.isFrozen(headers)) {
      let size = frozenHeaderSizes.get(headers)
      if (size === undefined) frozenHeaderSizes.set(headers, (size = sizeOfHeaders(headers)))
      bytes += size
    } else {
      bytes += sizeOfHeaders(headers)
    }
  }
  return bytes
}

/**
 * An idempotent producer (acks=all, one request in flight, as kafkajs requires for idempotence) that batches
 * records from all callers into one sendBatch per round trip, bounds what it holds, and makes callers wait
 * when the bound is reached instead of buffering without limit.
 */
export async function createProducer(kafka: KafkaClient, options: ProducerOptions = {}): Promise<LookstreamProducer> {
  const maxInFlightBytes = options.maxInFlightBytes ?? 16 * 1024 * 1024
  const maxInFlightMessages = options.maxInFlightMessages ?? 20_000
  const maxBatchMessages = Math.min(options.maxBatchMessages ?? 5000, maxInFlightMessages)
  const maxBatchBytes = options.maxBatchBytes ?? 900 * 1024
  const lingerMs = options.lingerMs ?? 5
  const maxRecordBytes = options.maxRecordBytes ?? 1_000_000
  const timeout = options.timeoutMs ?? 30_000
  const compression = compressionType(options.compression ?? 'none')

  const partitioner = Partitioners.DefaultPartitioner()
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    ...(options.retries === undefined ? {} : { retry: { retries: options.retries } }),
    // The partition is kept on the message, so an acknowledgement can name the record's offset, and a retry
    // of the batch puts it in the same partition (kafkajs' partitioners honour message.partition). A
    // WeakMap did this before; its entries lived until a full GC, ~1 per record.
    createPartitioner: () => (args) => {
      const partition = partitioner(args)
      args.message.partition = partition
      return partition
    },
  })
  await producer.connect()

  let queue: Entry[] = []
  let queuedBytes = 0
  let pendingMessages = 0
  let pendingBytes = 0
  let batchInFlight = false
  let lingerTimer: NodeJS.Timeout | undefined
  let flushing = 0
  let closing = false
  let closed: Promise<void> | undefined
  const waiters: Waiter[] = []
  const writableWaiters: (() => void)[] = []
  const idleWaiters: (() => void)[] = []

  function hasRoom(bytes: number): boolean {
    // A record larger than the whole bound still goes through, alone, rather than waiting forever.
    if (pendingMessages === 0) return true
    return pendingMessages + 1 <= maxInFlightMessages && pendingBytes + bytes <= maxInFlightBytes
  }

  function isWritable(): boolean {
    return waiters.length === 0 && pendingMessages < maxInFlightMessages && pendingBytes < maxInFlightBytes
  }

  function release(): void {
    while (waiters.length > 0 && hasRoom(waiters[0]!.bytes)) {
      const waiter = waiters.shift()!
      pendingMessages += 1
      pendingBytes += waiter.bytes
      waiter.wake()
    }
    if (isWritable()) for (const wake of writableWaiters.splice(0)) wake()
    if (pendingMessages === 0 && waiters.length === 0) for (const wake of idleWaiters.splice(0)) wake()
  }

  function schedule(): void {
    if (batchInFlight || queue.length === 0) return
    const full = queue.length >= maxBatchMessages || queuedBytes >= maxBatchBytes
    if (full || flushing > 0 || closing || lingerMs <= 0) {
      sendNext()
      return
    }
    lingerTimer ??= setTimeout(() => {
      lingerTimer = undefined
      sendNext()
    }, lingerMs)
  }

  function takeBatch(): Entry[] {
    let bytes = 0
    let count = 0
    while (count < queue.length && count < maxBatchMessages) {
      const next = queue[count]!.bytes
      if (count > 0 && bytes + next > maxBatchBytes) break
      bytes += next
      count += 1
    }
    const batch = queue.slice(0, count)
    queue = queue.slice(count)
    queuedBytes -= bytes
    return batch
  }

  function sendNext(): void {
    if (lingerTimer !== undefined) {
      clearTimeout(lingerTimer)
      lingerTimer = undefined
    }
    if (batchInFlight || queue.length === 0) return
    batchInFlight = true
    const batch = takeBatch()
    void sendBatch(batch).finally(() => {
      batchInFlight = false
      for (const entry of batch) {
        pendingMessages -= 1
        pendingBytes -= entry.bytes
      }
      release()
      // Records that queued up during the round trip have waited long enough: send them now.
      if (queue.length > 0) sendNext()
    })
  }

  async function sendBatch(batch: Entry[]): Promise<void> {
    const byTopic = new Map<string, Message[]>()
    for (const entry of batch) {
      const messages = byTopic.get(entry.topic)
      if (messages) messages.push(entry.message)
      else byTopic.set(entry.topic, [entry.message])
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }))
    const started = process.hrtime.bigint()
    let bytes = 0
    for (const entry of batch) bytes += entry.bytes
    let results: RecordMetadata[]
    try {
      results = await producer.sendBatch({ topicMessages, acks: -1, timeout, compression })
    } catch (err) {
      options.metrics?.onBatch({ messages: batch.length, bytes, seconds: secondsSince(started), ok: false })
      for (const entry of batch) entry.reject(err)
      return
    }
    options.metrics?.onBatch({ messages: batch.length, bytes, seconds: secondsSince(started), ok: true })
    // The next offset per topic and partition. Offsets are numbers while they are safe integers (always, in
    // practice), which spares each record a BigInt and a string key.
    const nextOffsets = new Map<string, Map<number, number | bigint>>()
    const offsetsOf = (topic: string) => {
      let partitions = nextOffsets.get(topic)
      if (partitions === undefined) nextOffsets.set(topic, (partitions = new Map<number, number | bigint>()))
      return partitions
    }
    for (const result of results) {
      const base = BigInt(result.baseOffset ?? '-1')
      offsetsOf(result.topicName).set(result.partition, base <= MAX_SAFE_OFFSET ? Number(base) : base)
    }
    let lastTopic: string | undefined
    let partitions = new Map<number, number | bigint>()
    for (const entry of batch) {
      if (entry.topic !== lastTopic) {
        lastTopic = entry.topic
        partitions = offsetsOf(entry.topic)
      }
      const partition = entry.message.partition ?? -1
      const offset = partitions.get(partition) ?? -1
      partitions.set(partition, typeof offset === 'bigint' ? offset + 1n : offset + 1)
      entry.resolve({ topic: entry.topic, partition, offset: String(offset) })
    }
  }

  // Not async: on the fast path (room in the window) a record costs one Promise, not two.
  function send(record: ProduceRecord): Promise<RecordAck> {
    if (closing) return Promise.reject(new KafkaError('LS_KAFKA_PRODUCER_CLOSED', 'producer is closed'))
    let bytes: number
    try {
      bytes = sizeOf(record)
    } catch (err) {
      // E.g. a header value that is not a string: a rejection, as from an async function, never a throw.
      return Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
    if (bytes > maxRecordBytes) {
      return Promise.reject(
        new KafkaError('LS_KAFKA_RECORD_TOO_LARGE', `record of ~${bytes} bytes is over ${maxRecordBytes}`),
      )
    }
    if (waiters.length === 0 && hasRoom(bytes)) {
      pendingMessages += 1
      pendingBytes += bytes
      return enqueue(record, bytes)
    }
    // Capacity is reserved for us by release() before we are woken, in arrival order.
    return new Promise<void>((wake) => waiters.push({ bytes, wake })).then(() => enqueue(record, bytes))
  }

  function enqueue(record: ProduceRecord, bytes: number): Promise<RecordAck> {
    const message: Message = { key: record.key ?? null, value: record.value, headers: record.headers }
    if (record.partition !== undefined) message.partition = record.partition
    return new Promise<RecordAck>((resolve, reject) => {
      queue.push({ topic: record.topic, message, bytes, resolve, reject })
      queuedBytes += bytes
      schedule()
    })
  }

  async function flush(): Promise<void> {
    if (pendingMessages === 0 && waiters.length === 0) return
    flushing += 1
    try {
      sendNext()
      await new Promise<void>((wake) => idleWaiters.push(wake))
    } finally {
      flushing -= 1
    }
  }

  return {
    send,
    isWritable,
    whenWritable: () => (isWritable() ? Promise.resolve() : new Promise<void>((wake) => writableWaiters.push(wake))),
    flush,
    close: () => {
      closing = true
      closed ??= (async () => {
        await flush()
        await producer.disconnect()
      })()
      return closed
    },
    stats: () => ({ pendingMessages, pendingBytes, waitingSends: waiters.length, batchInFlight }),
  }
}

function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9
}
