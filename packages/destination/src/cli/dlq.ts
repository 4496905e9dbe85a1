import { DESTINATIONS, HEADERS, dlqTopic, isDestinationId } from '@lookstream/events'
import {
  createKafka,
  createProducer,
  runConsumer,
  type ConsumedRecord,
  type KafkaClient,
  type LookstreamProducer,
} from '@lookstream/kafka'
import {
  ConfigError,
  KafkaEnv,
  RedisEnv,
  loadConfig,
  resolveKafkaSecurity,
  resolveRedisSettings,
  type KafkaSecurity,
  type RedisConnection,
} from '@lookstream/config'
import { createRedis } from '@lookstream/redis'
import type { Redis } from 'ioredis'
import { type Static } from 'typebox'
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { DEFAULT_DEDUPE_TTL_SECONDS, Dedupe } from '../dedupe.ts'
import { FAILURE_HEADERS, RUNTIME_HEADERS } from '../failure-headers.ts'
import { matches, parseTime, toEntry, type DlqEntry, type DlqFilter } from './dlq-filter.ts'

const USAGE = `usage: dlq list|replay --destination <${DESTINATIONS.join('|')}> [filters] [--dry-run] [--json]
  list     print the dead-lettered messages (in each partition's order, oldest first) and a count per reason
  replay   publish them again to their original topic (same key, value and messageId), skipping those already
           delivered (the destination's dedupe in Redis) and those already replayed since they were dead-lettered
  filters  --reason CODE_OR_TEXT, --send-id ID, --message-id ID (repeatable), --since T, --until T
           (T is ISO 8601 or a duration back from now: 30m, 2h, 7d)
  --dry-run  replay: report what would be replayed and skipped, publish and record nothing
  Progress goes to stderr every --progress-ms (default 1000; 0: after every fetched batch). The DLQ is read up to its end when the command
  starts; --idle-ms N (default 30000) stops the read if no record arrives for that long before the end.
  Env: KAFKA_BROKERS (default 127.0.0.1:9092) and the KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_*, KAFKA_SASL_* settings
  the services use; replay: REDIS_URL (default redis://127.0.0.1:6379) and the REDIS_* settings the services use
  (docs/operations.md), DELIVERY_DEDUPE_TTL_SECONDS (default ${DEFAULT_DEDUPE_TTL_SECONDS}).`

/** A replayed message is remembered this long, so replaying the same dead letter again publishes nothing. */
export const REPLAY_MEMORY_MS = 30 * 24 * 3600 * 1000

const MAX_ID_CHARS = 128
const MAX_REASONS = 100

export interface Io {
  out(line: string): void
  err(line: string): void
}

export function replayHeaders(
  headers: Record<string, string | undefined>,
  now: Date,
  destination: string,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !FAILURE_HEADERS.has(name)) out[name] = value
  }
  // Addressed to the destination whose dead letter it is: the other destinations of the original message had
  // their own outcome (one that dead-lettered it too would otherwise get a second dead letter, a file destination
  // a second copy of the row).
  out[HEADERS.destinations] = destination
  out[RUNTIME_HEADERS.replayedAt] = now.toISOString()
  return out
}

/** The replay claim of a dead letter: its messageId, or its DLQ position when it has none. */
export function replayClaimKey(destination: string, entry: Pick<DlqEntry, 'messageId' | 'partition' | 'offset'>) {
  const id = entry.messageId ?? `@${entry.partition}:${entry.offset}`
  return `lookstream:dlq-replayed:{${destination}}:${id}`
}

// A claim is `p:<run>:<ms>` while its copy is being published and `d:<run>:<ms>` once Kafka acknowledged it.
// Claim (1) unless the message was replayed at or after it was dead-lettered, or this run is publishing it already.
// A pending claim of another run (one that crashed before the ack) does not block: publishing again is safe,
// because the runtime's dedupe drops a copy of a message that was delivered.
const CLAIM = `local v = redis.call('GET', KEYS[1])
if v then
  local state, run, at = string.match(v, '^(%a):([^:]*):(%d+)$')
  if state == 'd' and tonumber(at) >= tonumber(ARGV[1]) then return 0 end
  if state == 'p' and run == ARGV[3] then return 0 end
end
if ARGV[5] == 'dry' then return redis.call('SADD', KEYS[2], KEYS[1]) end
redis.call('SET', KEYS[1], 'p:' .. ARGV[3] .. ':' .. ARGV[2], 'PX', ARGV[4])
return 1`

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

interface Counts {
  total: number
  read: number
  matched: number
  replayed: number
  delivered: number
  replayedBefore: number
  unreplayable: number
}

function describe(entry: DlqEntry, action?: string): string {
  return [
    ...(action === undefined ? [] : [action]),
    entry.lastAttemptAt || '-',
    `${entry.partition}/${entry.offset}`,
    entry.messageId ?? '-',
    entry.code,
    `attempts=${entry.attempts}`,
    entry.error.replace(/\s+/g, ' ').slice(0, 200),
  ].join('  ')
}

interface PartitionRange {
  partition: number
  low: bigint
  high: bigint
}

/** The DLQ's offsets when the command starts: it reads exactly these records, whatever arrives meanwhile. */
async function snapshot(kafka: KafkaClient, topic: string): Promise<PartitionRange[]> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    if (!(await admin.listTopics()).includes(topic)) return []
    return (await admin.fetchTopicOffsets(topic)).map((p) => ({
      partition: p.partition,
      low: BigInt(p.low),
      high: BigInt(p.high),
    }))
  } finally {
    await admin.disconnect()
  }
}

/**
 * Streams the DLQ from its start to the snapshot's end through `handle`, one fetched batch at a time (the next
 * batch of a partition is fetched only after `handle` returned), with a throwaway group that commits nothing.
 * Memory is bounded by the consumer's fetch size, never by the DLQ's length.
 */
async function streamDlq(
  kafka: KafkaClient,
  topic: string,
  ranges: PartitionRange[],
  idleMs: number,
  handle: (records: ConsumedRecord[]) => Promise<void>,
): Promise<void> {
  const ends = new Map(ranges.map((r) => [r.partition, r.high]))
  const waiting = ranges.filter((r) => r.high > r.low)
  if (waiting.length === 0) return
  let lastActivity = Date.now()
  let failure: Error | undefined
  const runner = await runConsumer({
    kafka,
    groupId: `lookstream.dlq-cli.${randomUUID()}`,
    topics: [topic],
    fromBeginning: true,
    logger: pino({ level: 'silent' }),
    sessionTimeoutMs: 30_000,
    heartbeatIntervalMs: 1000,
    commitIntervalMs: 3_600_000,
    eachBatch: async (batch) => {
      lastActivity = Date.now()
      if (failure !== undefined) return
      const end = ends.get(batch.partition) ?? 0n
      try {
        await handle(batch.records.filter((record) => BigInt(record.offset) < end))
        await batch.heartbeat()
      } catch (err) {
        failure ??= asError(err)
      }
    },
  })
  try {
    const started = Date.now()
    for (;;) {
      if (failure !== undefined) throw failure
      const positions = new Map(runner.partitions().map((p) => [p.partition, BigInt(p.position ?? '-1')]))
      if (waiting.every((r) => (positions.get(r.partition) ?? -1n) >= r.high)) break
      if (runner.assignment().length === 0 && Date.now() - started > 60_000) {
        throw new Error(`no partitions of ${topic} assigned within 60 s`)
      }
      if (Date.now() - Math.max(lastActivity, started) > idleMs) {
        throw new Error(`no record arrived for ${idleMs} ms before the end of ${topic}: stopped`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } finally {
    await runner.stop()
  }
  // Set by the handler, which TypeScript's narrowing above does not see.
  const late = failure as Error | undefined
  if (late !== undefined) throw late
}

function progressLine(topic: string, counts: Counts, replay: boolean, dryRun: boolean): string {
  const percent = counts.total === 0 ? 100 : Math.floor((counts.read / counts.total) * 100)
  let line = `${topic}: read ${counts.read}/${counts.total} (${percent}%), ${counts.matched} match`
  if (replay) {
    line += `, ${dryRun ? 'would replay' : 'replayed'} ${counts.replayed}, already delivered ${counts.delivered}`
    line += `, already replayed ${counts.replayedBefore}, not replayable ${counts.unreplayable}`
  }
  return line
}

interface Replayer {
  handle(entries: { entry: DlqEntry; record: ConsumedRecord }[]): Promise<void>
  close(): Promise<void>
}

function createReplayer(options: {
  destination: string
  redis: Redis
  dedupe: Dedupe
  producer: LookstreamProducer | undefined
  counts: Counts
  io: Io
  json: boolean
}): Replayer {
  const { destination, redis, dedupe, producer, counts, io, json } = options
  const run = randomUUID()
  const dryRunSet = `lookstream:dlq-dry-run:{${destination}}:${run}`
  const report = (entry: DlqEntry, action: string) =>
    io.out(json ? JSON.stringify({ action, ...entry }) : describe(entry, action))

  return {
    async handle(selected) {
      const replayable = selected.filter(({ entry, record }) => {
        if (record.headers[HEADERS.originalTopic] && record.value !== null) return true
        counts.unreplayable++
        report(entry, 'not-replayable')
        return false
      })
      if (replayable.length === 0) return
      const withId = replayable.filter(({ entry }) => entry.messageId !== undefined)
      const delivered = new Set<DlqEntry>()
      const answers = await dedupe.wasDelivered(withId.map(({ entry }) => entry.messageId!))
      withId.forEach(({ entry }, index) => answers[index] && delivered.add(entry))

      const now = Date.now()
      const claims = redis.pipeline()
      const candidates = replayable.filter(({ entry }) => {
        if (!delivered.has(entry)) return true
        counts.delivered++
        report(entry, 'already-delivered')
        return false
      })
      for (const { entry } of candidates) {
        const at = Number.isFinite(entry.deadLetteredAt) ? Math.max(0, Math.floor(entry.deadLetteredAt)) : 0
        claims.eval(
          CLAIM,
          2,
          replayClaimKey(destination, entry),
          dryRunSet,
          String(at),
          String(now),
          run,
          String(REPLAY_MEMORY_MS),
          producer === undefined ? 'dry' : 'real',
        )
      }
      const claimed = ((await claims.exec()) ?? []).map(([err, value]) => {
        if (err) throw err
        return value === 1
      })
      const toSend = candidates.filter(({ entry }, index) => {
        if (claimed[index]) return true
        counts.replayedBefore++
        report(entry, 'already-replayed')
        return false
      })
      if (producer === undefined) {
        for (const { entry } of toSend) report(entry, 'would-replay')
        counts.replayed += toSend.length
        return
      }
      const replayedAt = new Date(now)
      const pending = `p:${run}:${now}`
      const results = await Promise.allSettled(
        toSend.map(({ record }) =>
          producer.send({
            topic: record.headers[HEADERS.originalTopic]!,
            key: record.key,
            value: record.value!,
            headers: replayHeaders(record.headers, replayedAt, destination),
          }),
        ),
      )
      const settle = redis.pipeline()
      let firstError: Error | undefined
      results.forEach((result, index) => {
        const { entry } = toSend[index]!
        const key = replayClaimKey(destination, entry)
        if (result.status === 'fulfilled') {
          settle.set(key, `d:${run}:${now}`, 'PX', REPLAY_MEMORY_MS)
          counts.replayed++
          report(entry, 'replayed')
        } else {
          // Not published: the claim goes, so the next replay tries it again.
          settle.eval(RELEASE, 1, key, pending)
          firstError ??= asError(result.reason)
        }
      })
      for (const [err] of (await settle.exec()) ?? []) if (err) throw err
      if (firstError !== undefined) throw firstError
    },
    async close() {
      if (producer === undefined) await redis.del(dryRunSet)
    },
  }
}

export async function runDlqCommand(argv: readonly string[], io: Io, env = process.env): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      // `pnpm run dlq -- list …` passes the `--` through.
      args: argv[0] === '--' ? argv.slice(1) : [...argv],
      allowPositionals: true,
      options: {
        destination: { type: 'string' },
        reason: { type: 'string' },
        'send-id': { type: 'string' },
        'message-id': { type: 'string', multiple: true },
        since: { type: 'string' },
        until: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        'idle-ms': { type: 'string', default: '30000' },
        'progress-ms': { type: 'string', default: '1000' },
        help: { type: 'boolean', default: false },
      },
    })
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  const command = positionals[0]
  if (values.help || (command !== 'list' && command !== 'replay') || positionals.length > 1) {
    io.err(positionals.length > 1 ? `unexpected argument: ${positionals[1]}\n${USAGE}` : USAGE)
    return values.help ? 0 : 2
  }
  const destination = values.destination ?? ''
  if (!isDestinationId(destination)) {
    io.err(`--destination must be one of ${DESTINATIONS.join(', ')}\n${USAGE}`)
    return 2
  }
  const replay = command === 'replay'
  const dryRun = values['dry-run']
  const filter: DlqFilter = {}
  let idleMs: number
  let progressMs: number
  let dedupeTtl = DEFAULT_DEDUPE_TTL_SECONDS
  try {
    if (dryRun && !replay) throw new Error('--dry-run applies to replay only')
    if (values.reason !== undefined) filter.reason = nonEmpty('--reason', values.reason)
    if (values['send-id'] !== undefined) filter.sendId = nonEmpty('--send-id', values['send-id'])
    if (values['message-id'] !== undefined) {
      filter.messageIds = new Set(values['message-id'].map((id) => nonEmpty('--message-id', id)))
    }
    if (values.since !== undefined) filter.since = parseTime(values.since)
    if (values.until !== undefined) filter.until = parseTime(values.until)
    if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) {
      throw new Error('--since must be before --until')
    }
    idleMs = positiveInteger('--idle-ms', values['idle-ms'])
    progressMs = positiveInteger('--progress-ms', values['progress-ms'], 0)
    if (replay && env.DELIVERY_DEDUPE_TTL_SECONDS !== undefined) {
      dedupeTtl = positiveInteger('DELIVERY_DEDUPE_TTL_SECONDS', env.DELIVERY_DEDUPE_TTL_SECONDS)
    }
  } catch (err) {
    io.err((err as Error).message)
    return 2
  }
  let kafkaEnv: Static<typeof KafkaEnv>
  let security: KafkaSecurity
  let redisConnection: RedisConnection | undefined
  try {
    kafkaEnv = loadConfig(KafkaEnv, env)
    security = resolveKafkaSecurity(kafkaEnv)
    if (replay) redisConnection = resolveRedisSettings(loadConfig(RedisEnv, env))
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    io.err(`${err.code}: ${err.message}`)
    return 2
  }

  const kafka = createKafka({
    brokers: kafkaEnv.KAFKA_BROKERS,
    clientId: 'lookstream-dlq-cli',
    logger: pino({ level: 'silent' }),
    security,
  })
  const topic = dlqTopic(destination)
  const counts: Counts = {
    total: 0,
    read: 0,
    matched: 0,
    replayed: 0,
    delivered: 0,
    replayedBefore: 0,
    unreplayable: 0,
  }
  const byReason = new Map<string, number>()
  let redis: Redis | undefined
  let producer: LookstreamProducer | undefined
  let replayer: Replayer | undefined
  let lastProgress = Date.now()
  const progress = () => {
    lastProgress = Date.now()
    io.err(progressLine(topic, counts, replay, dryRun))
  }
  // While a batch is handled (or nothing arrives) the timer reports; between batches, the handler does.
  const timer = setInterval(() => Date.now() - lastProgress >= progressMs && progress(), Math.max(progressMs, 100))
  try {
    const ranges = await snapshot(kafka, topic)
    counts.total = Number(ranges.reduce((sum, r) => sum + (r.high - r.low), 0n))
    if (replay) {
      redis = createRedis(redisConnection!, { maxRetriesPerRequest: 2 }) as Redis
      if (!dryRun) producer = await createProducer(kafka)
      replayer = createReplayer({
        destination,
        redis,
        dedupe: new Dedupe(redis, destination, dedupeTtl),
        producer,
        counts,
        io,
        json: values.json,
      })
    }
    await streamDlq(kafka, topic, ranges, idleMs, async (records) => {
      counts.read += records.length
      const selected: { entry: DlqEntry; record: ConsumedRecord }[] = []
      for (const record of records) {
        const entry = toEntry(record)
        if (!matches(entry, filter)) continue
        counts.matched++
        const reason = byReason.has(entry.code) || byReason.size < MAX_REASONS ? entry.code : 'other'
        byReason.set(reason, (byReason.get(reason) ?? 0) + 1)
        if (replayer === undefined) io.out(values.json ? JSON.stringify(entry) : describe(entry))
        else selected.push({ entry, record })
      }
      if (replayer !== undefined && selected.length > 0) await replayer.handle(selected)
      if (Date.now() - lastProgress >= progressMs) progress()
    })
  } catch (err) {
    io.err(progressLine(topic, counts, replay, dryRun))
    io.err(`dlq ${command} failed: ${(err as Error).message}`)
    return 1
  } finally {
    clearInterval(timer)
    await replayer?.close().catch(() => undefined)
    await producer?.close()
    redis?.disconnect()
  }
  io.err(progressLine(topic, counts, replay, dryRun))
  for (const [code, count] of [...byReason].sort((a, b) => b[1] - a[1])) io.err(`  ${count}  ${code}`)
  if (replay) {
    io.err(
      `${dryRun ? 'dry run: would replay' : 'replayed'} ${counts.replayed} of ${counts.matched} matching to their original topics`,
    )
  }
  return 0
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

function nonEmpty(name: string, value: string): string {
  if (value.trim() === '' || value.length > MAX_ID_CHARS) {
    throw new Error(`${name} must be 1 to ${MAX_ID_CHARS} characters`)
  }
  return value
}

function positiveInteger(name: string, value: string, minimum = 1): number {
  const number = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < minimum) {
    throw new Error(`${name} must be an integer of at least ${minimum}, got "${value}"`)
  }
  return number
}

if (import.meta.main) {
  const code = await runDlqCommand(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  })
  process.exitCode = code
}
