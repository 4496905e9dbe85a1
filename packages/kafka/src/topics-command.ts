import {
  ConfigError,
  KafkaEnv,
  KafkaTopicPolicyEnv,
  loadConfig,
  resolveKafkaSecurity,
  type Env,
} from '@lookstream/config'
import { DESTINATIONS, isDestinationId, type DestinationId } from '@lookstream/events'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { Type } from 'typebox'
import { createKafka } from './create-kafka.ts'
import { classifyKafkaStartError } from './start-errors.ts'
import {
  applyTopics,
  describeChange,
  describeTopics,
  lookstreamTopics,
  planTopics,
  topicRisks,
  type TopicPolicy,
} from './topic-management.ts'

const USAGE = `usage: topics plan|apply|verify [--destinations ${DESTINATIONS.join(',')}]
  plan     print what apply would change (nothing is changed)
  apply    create missing topics, add partitions, set min.insync.replicas and retention
  verify   exit 1 if a topic is missing or would lose data on one broker loss
  Topics: canonical, sends, and each destination's retry and DLQ topics (default: every destination).
  Policy: KAFKA_TOPIC_PARTITIONS (6), KAFKA_TOPIC_REPLICATION_FACTOR (3), KAFKA_TOPIC_MIN_INSYNC_REPLICAS (2),
  KAFKA_TOPIC_RETENTION_MS (7 days), KAFKA_DLQ_RETENTION_MS (30 days). Kafka: the services' KAFKA_* settings.`

export interface TopicsIo {
  out(line: string): void
  err(line: string): void
}

const Env = Type.Object({ ...KafkaEnv.properties, ...KafkaTopicPolicyEnv.properties })

/** `pnpm topics plan|apply|verify`: exit 0 when done (verify: safe), 1 when not, 2 on bad usage or settings. */
export async function runTopicsCommand(argv: readonly string[], io: TopicsIo, env: Env = process.env): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv[0] === '--' ? argv.slice(1) : [...argv],
      allowPositionals: true,
      options: { destinations: { type: 'string' }, help: { type: 'boolean', default: false } },
    })
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  const command = parsed.positionals[0]
  if (parsed.values.help || (command !== 'plan' && command !== 'apply' && command !== 'verify')) {
    io.err(USAGE)
    return parsed.values.help ? 0 : 2
  }
  const names = (parsed.values.destinations ?? DESTINATIONS.join(',')).split(',').map((d) => d.trim())
  const unknown = names.filter((d) => !isDestinationId(d))
  if (unknown.length > 0) {
    io.err(`--destinations: unknown ${unknown.join(', ')} (use ${DESTINATIONS.join(', ')})`)
    return 2
  }
  let config
  let security
  try {
    config = loadConfig(Env, env)
    security = resolveKafkaSecurity(config)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    io.err(`${err.code}: ${err.message}`)
    return 2
  }
  const policy: TopicPolicy = {
    partitions: config.KAFKA_TOPIC_PARTITIONS,
    replicationFactor: config.KAFKA_TOPIC_REPLICATION_FACTOR,
    minInsyncReplicas: config.KAFKA_TOPIC_MIN_INSYNC_REPLICAS,
    retentionMs: config.KAFKA_TOPIC_RETENTION_MS,
    dlqRetentionMs: config.KAFKA_DLQ_RETENTION_MS,
  }
  const desired = lookstreamTopics(policy, names as DestinationId[])
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID ?? 'lookstream-topics',
    logger: pino({ level: 'silent' }),
    security,
    retries: 2,
  })
  const admin = kafka.admin()
  try {
    await admin.connect()
    const actual = await describeTopics(
      admin,
      desired.map((d) => d.topic),
    )
    if (command === 'verify') {
      let unsafe = 0
      for (const want of desired) {
        const have = actual.get(want.topic)
        const risks = have === undefined ? ['does not exist'] : topicRisks(have)
        if (risks.length > 0) unsafe += 1
        io.out(
          `${risks.length === 0 ? 'ok    ' : 'UNSAFE'}  ${want.topic}${risks.length ? `: ${risks.join('; ')}` : ''}`,
        )
      }
      if (unsafe > 0)
        io.err(`${unsafe} of ${desired.length} topics unsafe: run "pnpm topics apply" (see docs/operations.md)`)
      return unsafe === 0 ? 0 : 1
    }
    const changes = planTopics(desired, actual)
    for (const change of changes) io.out(describeChange(change))
    if (changes.length === 0) io.err(`${desired.length} topics as wanted: nothing to change`)
    if (command === 'plan') return 0
    const manual = await applyTopics(admin, changes, actual)
    io.err(
      `applied ${changes.length - manual.length} change(s)${manual.length ? `; ${manual.length} need a person (above)` : ''}`,
    )
    return manual.length === 0 ? 0 : 1
  } catch (err) {
    const known = classifyKafkaStartError(err, security)
    io.err(known !== null ? `${known.code}: ${known.message}` : `topics ${command} failed: ${(err as Error).message}`)
    return 1
  } finally {
    await admin.disconnect()
  }
}
