import { ConfigError, KafkaEnv, loadConfig, resolveKafkaSecurity, type KafkaSecurity } from '@lookstream/config'
import { parseArgs } from 'node:util'
import { type Static } from 'typebox'
import { randomUUID } from 'node:crypto'
import { DESTINATIONS, HEADERS, dlqTopic, isDestinationId } from '@lookstream/events'
import { createKafka, createProducer, runConsumer, type ConsumedRecord, type KafkaClient } from '@lookstream/kafka'
import { pino } from 'pino'
import { FAILURE_HEADERS, RUNTIME_HEADERS } from '../failure-headers.ts'
import { matches, parseTime, toEntry, type DlqEntry, type DlqFilter } from './dlq-filter.ts'

const USAGE = `usage: dlq list|replay --destination <${DESTINATIONS.join('|')}> [--reason CODE_OR_TEXT] [--since T] [--until T]
  list     print the dead-lettered messages (oldest first) with their reasons, then a count per reason
  replay   publish them again to their original topic (same messageId, so dedupe still holds)
  T is ISO 8601 or a duration back from now (30m, 2h, 7d). Options: --json, --idle-ms N (default 2000).
  Kafka: KAFKA_BROKERS (default 127.0.0.1:9092) and the KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_*, KAFKA_SASL_*
  settings the services use (docs/operations.md).`

export interface Io {
  out(line: string): void
  err(line: string): void
}

export function replayHeaders(headers: Record<string, string | undefined>, now: Date): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !FAILURE_HEADERS.has(name)) out[name] = value
  }
  out[RUNTIME_HEADERS.replayedAt] = now.toISOString()
  return out
}

/** Reads the whole DLQ topic (until it has been quiet for idleMs) with a throwaway group that commits nothing. */
async function readDlq(kafka: KafkaClient, topic: string, idleMs: number): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = []
  let lastActivity = Date.now()
  const runner = await runConsumer({
    kafka,
    groupId: `lookstream.dlq-cli.${randomUUID()}`,
    topics: [topic],
    fromBeginning: true,
    logger: pino({ level: 'silent' }),
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    commitIntervalMs: 3_600_000,
    eachBatch: (batch) => {
      records.push(...batch.records)
      lastActivity = Date.now()
      return Promise.resolve()
    },
  })
  try {
    const started = Date.now()
    for (;;) {
      const assigned = runner.partitions()
      const caughtUp =
        assigned.length > 0 &&
        assigned.every((p) => p.highWatermark !== undefined && BigInt(p.position ?? '0') >= BigInt(p.highWatermark))
      const quiet = Date.now() - Math.max(lastActivity, started) >= idleMs
      if (caughtUp || (quiet && assigned.length > 0)) break
      if (Date.now() - started > 60_000 + idleMs) throw new Error(`no partitions of ${topic} assigned within 60 s`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    await runner.stop()
  }
  return records.sort((a, b) => Number(a.timestamp) - Number(b.timestamp) || a.partition - b.partition)
}

function describe(entry: DlqEntry): string {
  return [
    entry.lastAttemptAt || '-',
    `${entry.partition}/${entry.offset}`,
    entry.messageId ?? '-',
    entry.code,
    `attempts=${entry.attempts}`,
    entry.error.replace(/\s+/g, ' ').slice(0, 200),
  ].join('  ')
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
        since: { type: 'string' },
        until: { type: 'string' },
        json: { type: 'boolean', default: false },
        'idle-ms': { type: 'string', default: '2000' },
        help: { type: 'boolean', default: false },
      },
    })
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  const command = positionals[0]
  if (values.help || (command !== 'list' && command !== 'replay')) {
    io.err(USAGE)
    return values.help ? 0 : 2
  }
  const destination = values.destination ?? ''
  if (!isDestinationId(destination)) {
    io.err(`--destination must be one of ${DESTINATIONS.join(', ')}\n${USAGE}`)
    return 2
  }
  const filter: DlqFilter = {}
  try {
    if (values.reason !== undefined) filter.reason = values.reason
    if (values.since !== undefined) filter.since = parseTime(values.since)
    if (values.until !== undefined) filter.until = parseTime(values.until)
  } catch (err) {
    io.err((err as Error).message)
    return 2
  }

  let kafkaEnv: Static<typeof KafkaEnv>
  let security: KafkaSecurity
  try {
    kafkaEnv = loadConfig(KafkaEnv, env)
    security = resolveKafkaSecurity(kafkaEnv)
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
  const records = await readDlq(kafka, topic, Number(values['idle-ms']))
  const selected = records.filter((record) => matches(toEntry(record), filter))
  io.err(`${topic}: ${records.length} dead-lettered, ${selected.length} match`)

  if (command === 'list') {
    const byReason = new Map<string, number>()
    for (const record of selected) {
      const entry = toEntry(record)
      byReason.set(entry.code, (byReason.get(entry.code) ?? 0) + 1)
      io.out(values.json ? JSON.stringify(entry) : describe(entry))
    }
    for (const [code, count] of [...byReason].sort((a, b) => b[1] - a[1])) io.err(`  ${count}  ${code}`)
    return 0
  }

  const producer = await createProducer(kafka)
  let replayed = 0
  let lastReport = Date.now()
  try {
    const now = new Date()
    const sends: Promise<unknown>[] = []
    for (const record of selected) {
      const target = record.headers[HEADERS.originalTopic]
      if (target === undefined || record.value === null) {
        io.err(`skipped ${record.partition}/${record.offset}: no original topic or no value`)
        continue
      }
      sends.push(
        producer
          .send({ topic: target, key: record.key, value: record.value, headers: replayHeaders(record.headers, now) })
          .then(() => {
            replayed++
            if (Date.now() - lastReport >= 1000) {
              lastReport = Date.now()
              io.err(`replayed ${replayed}/${selected.length}`)
            }
          }),
      )
    }
    await Promise.all(sends)
  } finally {
    await producer.close()
  }
  io.err(`replayed ${replayed}/${selected.length} to their original topics`)
  return 0
}

if (import.meta.main) {
  const code = await runDlqCommand(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  })
  process.exitCode = code
}
