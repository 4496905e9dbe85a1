import { StartupError } from '@lookstream/config'
import { DESTINATIONS, MESSAGE_TOPICS, TOPICS, dlqTopic, retryTopic, type DestinationId } from '@lookstream/events'
import kafkajs, { type Admin } from 'kafkajs'
import { type KafkaClient } from './create-kafka.ts'

// kafkajs is CommonJS and Node's ESM loader does not see ConfigResourceTypes among its named exports.
const { ConfigResourceTypes } = kafkajs

/** How lookstream's topics should be set up. */
export interface TopicPolicy {
  partitions: number
  replicationFactor: number
  minInsyncReplicas: number
  retentionMs: number
  /** Dead-lettered messages wait for a person: kept longer than the rest. */
  dlqRetentionMs: number
}

const DAY_MS = 24 * 3600 * 1000

/**
 * Survives the loss of one broker without losing an acknowledged message (acks=-1 with three replicas, two of
 * which must have it) and without stopping writes (two of three remain in sync).
 */
export const PRODUCTION_TOPIC_POLICY: TopicPolicy = {
  partitions: 6,
  replicationFactor: 3,
  minInsyncReplicas: 2,
  retentionMs: 7 * DAY_MS,
  dlqRetentionMs: 30 * DAY_MS,
}

export interface DesiredTopic {
  topic: string
  partitions: number
  replicationFactor: number
  configs: Record<string, string>
}

/** Every topic lookstream uses: canonical, sends, and each destination's retry and DLQ topics. */
export function lookstreamTopics(
  policy: TopicPolicy,
  destinations: readonly DestinationId[] = DESTINATIONS,
): DesiredTopic[] {
  const topic = (name: string, retentionMs: number): DesiredTopic => ({
    topic: name,
    partitions: policy.partitions,
    replicationFactor: policy.replicationFactor,
    configs: {
      'cleanup.policy': 'delete',
      'min.insync.replicas': String(policy.minInsyncReplicas),
      'retention.ms': String(retentionMs),
    },
  })
  return [
    ...MESSAGE_TOPICS.map((name) => topic(name, policy.retentionMs)),
    topic(TOPICS.sends, policy.retentionMs),
    ...destinations.flatMap((d) => [
      topic(retryTopic(d), policy.retentionMs),
      topic(dlqTopic(d), policy.dlqRetentionMs),
    ]),
  ]
}

/** A topic as the cluster has it: configs are the effective values (the topic's own or the broker's). */
export interface ActualTopic {
  topic: string
  partitions: number
  replicationFactor: number
  configs: Record<string, string>
  /** The topic's own overrides (what AlterConfigs must keep). */
  overrides: Record<string, string>
}

export type TopicChange =
  | { kind: 'create'; topic: string; desired: DesiredTopic }
  | { kind: 'add-partitions'; topic: string; from: number; to: number }
  | { kind: 'alter-configs'; topic: string; changes: { name: string; from: string | undefined; to: string }[] }
  | { kind: 'manual'; topic: string; problem: string }

const DESCRIBED = ['cleanup.policy', 'min.insync.replicas', 'retention.ms']

/** Reads partitions, replication factor and the relevant configs of the named topics that exist. */
export async function describeTopics(admin: Admin, names: readonly string[]): Promise<Map<string, ActualTopic>> {
  const existing = new Set(await admin.listTopics())
  const present = names.filter((n) => existing.has(n))
  const out = new Map<string, ActualTopic>()
  if (present.length === 0) return out
  const metadata = await admin.fetchTopicMetadata({ topics: present })
  const configs = await admin.describeConfigs({
    resources: present.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
    includeSynonyms: false,
  })
  for (const t of metadata.topics) {
    const replicas = Math.min(...t.partitions.map((p) => p.replicas.length))
    out.set(t.name, {
      topic: t.name,
      partitions: t.partitions.length,
      replicationFactor: Number.isFinite(replicas) ? replicas : 0,
      configs: {},
      overrides: {},
    })
  }
  for (const resource of configs.resources) {
    const topic = out.get(resource.resourceName)
    if (topic === undefined) continue
    for (const entry of resource.configEntries) {
      if (DESCRIBED.includes(entry.configName)) topic.configs[entry.configName] = entry.configValue
      // configSource 1 is DYNAMIC_TOPIC_CONFIG (v1+); v0 only says whether the value is a default.
      const source = (entry as { configSource?: number }).configSource
      if (source === 1 || (source === undefined && !entry.isDefault))
        topic.overrides[entry.configName] = entry.configValue
    }
  }
  return out
}

/** What apply would do to get from the actual topics to the desired ones. Partitions are never removed. */
export function planTopics(desired: readonly DesiredTopic[], actual: ReadonlyMap<string, ActualTopic>): TopicChange[] {
  const changes: TopicChange[] = []
  for (const want of desired) {
    const have = actual.get(want.topic)
    if (have === undefined) {
      changes.push({ kind: 'create', topic: want.topic, desired: want })
      continue
    }
    if (have.partitions < want.partitions) {
      changes.push({ kind: 'add-partitions', topic: want.topic, from: have.partitions, to: want.partitions })
    }
    if (have.replicationFactor < want.replicationFactor) {
      changes.push({
        kind: 'manual',
        topic: want.topic,
        problem: `replication factor ${have.replicationFactor}, wanted ${want.replicationFactor}: reassign its partitions (kafka-reassign-partitions.sh) to ${want.replicationFactor} brokers`,
      })
    }
    const configChanges = Object.entries(want.configs)
      .filter(([name, value]) => have.configs[name] !== value)
      .map(([name, value]) => ({ name, from: have.configs[name], to: value }))
    if (configChanges.length > 0) changes.push({ kind: 'alter-configs', topic: want.topic, changes: configChanges })
  }
  return changes
}

export function describeChange(change: TopicChange): string {
  switch (change.kind) {
    case 'create':
      return `create ${change.topic}: ${change.desired.partitions} partitions, replication factor ${change.desired.replicationFactor}, ${Object.entries(
        change.desired.configs,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`
    case 'add-partitions':
      return `add partitions to ${change.topic}: ${change.from} -> ${change.to}`
    case 'alter-configs':
      return `alter ${change.topic}: ${change.changes.map((c) => `${c.name} ${c.from ?? '(unset)'} -> ${c.to}`).join(', ')}`
    case 'manual':
      return `by hand: ${change.topic}: ${change.problem}`
  }
}

/** Applies a plan (all but the 'manual' steps); returns those it could not do. */
export async function applyTopics(
  admin: Admin,
  changes: readonly TopicChange[],
  actual: ReadonlyMap<string, ActualTopic>,
): Promise<TopicChange[]> {
  const creates = changes.flatMap((c) => (c.kind === 'create' ? [c.desired] : []))
  if (creates.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: creates.map((d) => ({
        topic: d.topic,
        numPartitions: d.partitions,
        replicationFactor: d.replicationFactor,
        configEntries: Object.entries(d.configs).map(([name, value]) => ({ name, value })),
      })),
    })
  }
  const grow = changes.flatMap((c) => (c.kind === 'add-partitions' ? [{ topic: c.topic, count: c.to }] : []))
  if (grow.length > 0) await admin.createPartitions({ topicPartitions: grow })
  const alters = changes.flatMap((c) => (c.kind === 'alter-configs' ? [c] : []))
  if (alters.length > 0) {
    await admin.alterConfigs({
      validateOnly: false,
      // AlterConfigs replaces a topic's overrides: keep the ones this plan does not change.
      resources: alters.map((c) => ({
        type: ConfigResourceTypes.TOPIC,
        name: c.topic,
        configEntries: Object.entries({
          ...actual.get(c.topic)?.overrides,
          ...Object.fromEntries(c.changes.map((x) => [x.name, x.to])),
        }).map(([name, value]) => ({ name, value })),
      })),
    })
  }
  return changes.filter((c) => c.kind === 'manual')
}

/** Why a topic would lose acknowledged data or stop on one broker loss; empty when it is safe. */
export function topicRisks(topic: ActualTopic): string[] {
  const risks: string[] = []
  const rf = topic.replicationFactor
  const minIsr = Number(topic.configs['min.insync.replicas'] ?? '1')
  if (rf < 2) risks.push(`replication factor ${rf}: losing its broker loses the topic's data`)
  if (minIsr < 2) risks.push(`min.insync.replicas=${minIsr}: an acknowledged write may exist on one broker only`)
  else if (minIsr >= rf)
    risks.push(`min.insync.replicas=${minIsr} with replication factor ${rf}: one broker down stops every write`)
  return risks
}

/**
 * Production start-up check: every topic exists and none would lose data. Throws a StartupError listing the
 * topics and the command that fixes them.
 */
export async function verifyTopics(kafka: KafkaClient, topics: readonly string[]): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  let actual: Map<string, ActualTopic>
  try {
    actual = await describeTopics(admin, topics)
  } finally {
    await admin.disconnect()
  }
  const problems: string[] = []
  for (const name of topics) {
    const have = actual.get(name)
    if (have === undefined) problems.push(`${name} does not exist`)
    else for (const risk of topicRisks(have)) problems.push(`${name}: ${risk}`)
  }
  if (problems.length === 0) return
  throw new StartupError(
    'LS_KAFKA_TOPICS_UNSAFE',
    `${problems.length} topic problem(s): ${problems.join('; ')}. Fix: run "pnpm topics apply" with the same KAFKA_* settings (replication factor 3, min.insync.replicas 2 by default), or set KAFKA_TOPICS_MODE=create outside production`,
  )
}
