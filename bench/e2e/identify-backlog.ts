// What the bench/e2e scripts and bench/destinations/bulk-spacing.ts share: the identify messages they put on Kafka
// (as the ingress would), the producer that puts them there, and stopping what they started, in reverse order, also
// on Ctrl-C.
import { headersFor, type CanonicalMessage } from '@lookstream/events'
import { createKafka, createProducer, ensureTopics, type LookstreamProducer } from '@lookstream/kafka'
import { startLocalKafka, type LocalKafka } from '@lookstream/local-kafka'
import { startRedis, type RedisProcess } from '@lookstream/testing'
import { rmSync } from 'node:fs'
import { pino } from 'pino'

export function identify(run: string, index: number): CanonicalMessage {
  return {
    type: 'identify',
    messageId: `${run}-${index}`,
    userId: `user-${index}`,
    traits: { email: `user${index}@example.com`, plan: index % 3 === 0 ? 'annual' : 'monthly', ltv: index % 997 },
    context: { lookstream: { sendId: `bench-${run}`, row: index, action: 'segment_identify' } },
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: { All: false, Segment: { connection: 'default' } },
  }
}

const PLANS = ['annual', 'monthly', 'monthly']
const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'ES']

/** A Braze row as the ingress maps the destination pipeline benchmark's Braze Look. */
export function brazeIdentify(run: string, index: number): CanonicalMessage {
  return {
    type: 'identify',
    messageId: `${run}-${index}`,
    userId: `${run}-${index}`,
    traits: {
      first_name: `Name ${index}`,
      plan: PLANS[index % 3]!,
      country: COUNTRIES[index % 7]!,
      orders: index % 50,
    },
    context: { lookstream: { sendId: `bench-${run}`, row: index, action: 'braze' } },
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: {
      All: false,
      Braze: { connection: 'default', identifierKey: 'external_id', updateExistingOnly: false, nulls: 'skip' },
    },
  }
}
/** An mParticle row as the ingress maps the destination pipeline benchmark's mParticle Look (user profiles). */
export function mparticleIdentify(run: string, index: number): CanonicalMessage {
  // The mparticle action's identities travel in the context, beside what every message's context holds.
  const context = {
    identities: { customer_id: `${run}-${index}`, email: `${run}-${index}@example.com` },
    lookstream: { sendId: `bench-${run}`, row: index, action: 'mparticle' },
  }
  return {
    type: 'identify',
    messageId: `${run}-${index}`,
    userId: `${run}-${index}`,
    traits: {
      'looker_users.plan': PLANS[index % 3]!,
      'looker_users.country': COUNTRIES[index % 7]!,
      'looker_users.ltv': index % 997,
    },
    context,
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: {
      All: false,
      mParticle: { connection: 'default', environment: 'production', dataType: 'user_data', eventType: 'other' },
    },
  }
}

export interface Stops {
  push: (stop: () => Promise<unknown>) => void
  /** Runs every stop in reverse order (ignoring failures), then removes dataDir. */
  stopAll: () => Promise<void>
}

export function stopsFor(dataDir: string): Stops {
  const stops: (() => Promise<unknown>)[] = []
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined)
    rmSync(dataDir, { recursive: true, force: true })
  }
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)))
  return { push: (stop) => void stops.push(stop), stopAll }
}

/** local-kafka (data in dataDir) and a redis-server, both on loopback, their stops joining `stops`. */
export async function startKafkaAndRedis(
  dataDir: string,
  stops: Stops,
): Promise<{ kafka: LocalKafka; redis: RedisProcess }> {
  const kafka = await startLocalKafka({ port: 0, dataDir, logLevel: 'warn', initialRebalanceDelayMs: 0 })
  stops.push(() => kafka.stop())
  const redis = await startRedis()
  stops.push(() => redis.stop())
  return { kafka, redis }
}

export interface IdentifyProducer {
  producer: LookstreamProducer
  /** Produces one message to lookstream.identify.v1 with the ingress's key and headers. */
  send: (message: CanonicalMessage) => Promise<unknown>
  /** Produces `count` messages of a run, 5,000 at a time. */
  produce: (run: string, count: number) => Promise<void>
}

/**
 * Creates the canonical topics (6 partitions) and a producer for identify messages (`message` makes each one;
 * Segment's by default); its close joins `stops`.
 */
export async function identifyProducer(
  brokers: string,
  stops: Stops,
  message: (run: string, index: number) => CanonicalMessage = identify,
): Promise<IdentifyProducer> {
  const client = createKafka({ brokers, clientId: 'bench', logger: pino({ level: 'silent' }) })
  await ensureTopics(
    client,
    ['lookstream.identify.v1', 'lookstream.track.v1', 'lookstream.group.v1'].map((topic) => ({
      topic,
      numPartitions: 6,
    })),
  )
  const producer = await createProducer(client)
  stops.push(() => producer.close())
  const send = (message: CanonicalMessage) =>
    producer.send({
      topic: 'lookstream.identify.v1',
      key: message.userId ?? null,
      value: JSON.stringify(message),
      headers: headersFor(message, { producer: 'ingress' }),
    })
  const produce = async (run: string, count: number) => {
    for (let i = 0; i < count; i += 5000) {
      await Promise.all(Array.from({ length: Math.min(5000, count - i) }, (_, j) => send(message(run, i + j))))
    }
  }
  return { producer, send, produce }
}
