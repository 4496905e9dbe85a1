// What per-user order costs the delivery runtime, unordered and ordered side by side in one run:
//   node --conditions=@lookstream/source bench/order/run.ts [--messages 200000] [--batch 1000] [--rounds 3]
//   [--per-user 1] [--parked 100000]
// processRecords (the runtime's per-batch step) delivers --messages identify messages to the Segment simulator
// (in process, no rate limit) in batches of --batch, against a real redis-server: once as a destination without
// `orderedPerUser` and once with it (marks read per batch, one turn per user), alternating for --rounds rounds.
// --per-user > 1 gives each user that many consecutive messages in a batch (ordered: one in delivery at a time).
// Reported: messages/s, CPU seconds of this process (runtime + simulator) and of redis-server, per variant.
// Then --parked users are parked through the marks script and the Redis memory they take is measured
// (INFO used_memory, MEMORY USAGE of the two keys), per parked user.
import {
  Dedupe,
  Deliverer,
  HttpSender,
  RateLimiter,
  RedisGate,
  UserOrder,
  createDestinationMetrics,
  orderDeadlinesKey,
  orderMarksKey,
  orderUserOf,
  processRecords,
  type Connection,
  type HttpDestination,
  type InboundRecord,
  type OutboundRecord,
  type ProcessorDeps,
} from '@lookstream/destination'
import { headersFor, type CanonicalMessage } from '@lookstream/events'
import { startSegmentSimulator } from '@lookstream/simulators'
import { startRedis } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { Registry } from 'prom-client'

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    'per-user': { type: 'string', default: '1' },
    parked: { type: 'string', default: '100000' },
  },
})
const MESSAGES = Number(args.messages)
const BATCH = Number(args.batch)
const ROUNDS = Number(args.rounds)
const PER_USER = Number(args['per-user'])
const PARKED = Number(args.parked)

const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)

interface Conn extends Connection {
  authorization: string
}

function destinationFor(ordered: boolean): HttpDestination<never, Conn, Record<string, unknown>> {
  return {
    kind: 'http',
    // Routed as Segment (the messages name it); its marks and dedupe are kept under the round's own name.
    name: 'segment',
    integrationKey: 'Segment',
    ...(ordered ? { orderedPerUser: true } : {}),
    config: undefined as never,
    limits: { maxBatchItems: 500, maxBatchBytes: 480_000, maxItemBytes: 32_000, lingerMs: 5 },
    connections: () => new Map(),
    allowedHosts: () => [],
    toItem: (message) => {
      const { integrations: _routing, ...item } = message
      return item
    },
    buildRequest: (items, connection) => ({
      url: `${connection.endpoint}/v1/batch`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: connection.authorization },
      body: `{"batch":[${items.map((i) => i.json).join(',')}]}`,
    }),
    classify: (response, items) => ({
      kind: 'items',
      outcomes: items.map(() =>
        response.status < 300
          ? { kind: 'delivered' as const }
          : { kind: 'retryable' as const, reason: `HTTP ${response.status}` },
      ),
    }),
  }
}

async function redisCpuUs(redis: Redis): Promise<number> {
  const text = await redis.info('cpu')
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0)
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1] ?? 0)
}

const redisServer = await startRedis()
const redis = new Redis(redisServer.url)
const simulator = await startSegmentSimulator({ writeKeys: ['wk'], rateLimit: null, maxItems: 1000 })
const sender = new HttpSender({ allowedHosts: ['127.0.0.1'], timeoutMs: 10_000, connectionsPerOrigin: 8 })
const silent = pino({ level: 'silent' })

function depsFor(name: string, ordered: boolean): ProcessorDeps<Conn, Record<string, unknown>> {
  const destination = destinationFor(ordered)
  const metrics = createDestinationMetrics(new Registry())
  const controller = new AbortController()
  const gate = new RedisGate(silent)
  const connection: Conn = {
    name: 'default',
    endpoint: simulator.url,
    rateLimitRps: 1_000_000,
    authorization: `Basic ${Buffer.from('wk:').toString('base64')}`,
  }
  const dedupe = new Dedupe(redis, name)
  return {
    destination,
    connections: new Map([['default', connection]]),
    deliverer: new Deliverer({
      destination,
      http: sender,
      rateLimiter: new RateLimiter(redis),
      dedupe,
      redis: gate,
      metrics,
      log: silent,
      policy: {
        quickAttempts: 4,
        backoff: { baseMs: 50, maxMs: 500 },
        authBackoff: { baseMs: 50, maxMs: 500 },
        maxInFlightPerConnection: 4,
      },
      signal: controller.signal,
    }),
    dedupe,
    redis: gate,
    redisClient: redis,
    metrics,
    log: silent,
    events: { warn: () => {} } as unknown as ProcessorDeps<Conn, Record<string, unknown>>['events'],
    retryTopic: 'lookstream.retry.segment',
    dlqTopic: 'lookstream.dlq.segment',
    retry: { delay: { baseMs: 30_000, maxMs: 900_000 }, windowMs: 6 * 3_600_000 },
    quickAttempts: 4,
    produce: (records: OutboundRecord[]) => {
      if (records.length > 0) throw new Error(`${records.length} records parked or dead-lettered: nothing should fail`)
      return Promise.resolve()
    },
    signal: controller.signal,
    ...(ordered
      ? {
          order: new UserOrder(
            redis,
            name,
            { releaseMs: 1_800_000, maxParkedPerUser: 100, maxUsers: 100_000 },
            { parkedUsers: () => {}, released: () => {} },
          ),
        }
      : {}),
  }
}

function recordsFor(run: string, from: number, count: number): InboundRecord[] {
  const records: InboundRecord[] = []
  for (let i = from; i < from + count; i++) {
    const userId = `${run}-user-${Math.floor(i / PER_USER)}`
    const message: CanonicalMessage = {
      type: 'identify',
      messageId: `${run}-${i}`,
      userId,
      traits: { plan: i % 2 === 0 ? 'annual' : 'monthly', index: i, email: `${userId}@example.com` },
      context: { lookstream: { sendId: `send-${run}`, row: i, action: 'bench' } },
      timestamp: '2026-12-06T06:00:00.000Z',
      integrations: { All: false, Segment: true },
    }
    records.push({
      topic: 'lookstream.identify.v1',
      partition: 0,
      offset: String(i),
      key: Buffer.from(userId),
      value: Buffer.from(JSON.stringify(message)),
      headers: headersFor(message, { producer: 'bench', sendId: `send-${run}` }),
      timestamp: String(Date.now()),
    })
  }
  return records
}

interface Sample {
  variant: string
  messagesPerSecond: number
  cpuSeconds: number
  redisCpuSeconds: number
}

async function runVariant(variant: 'unordered' | 'ordered', round: number): Promise<Sample> {
  const name = `bench-${variant}-${round}`
  const deps = depsFor(name, variant === 'ordered')
  const run = `${variant}${round}`
  // Records are built before timing: the Kafka consumer hands them over already decoded like this.
  const batches: InboundRecord[][] = []
  for (let from = 0; from < MESSAGES; from += BATCH)
    batches.push(recordsFor(run, from, Math.min(BATCH, MESSAGES - from)))
  simulator.reset()
  const redisBefore = await redisCpuUs(redis)
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  // Four batches in flight at once, as the consumer keeps several fetches' batches going.
  let next = 0
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < batches.length) {
        const done = await processRecords(batches[next++]!, deps)
        if (done.some((d) => !d)) throw new Error('a record was not finished')
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const redisCpu = (await redisCpuUs(redis)) - redisBefore
  if (simulator.state.counters.accepted !== MESSAGES) {
    throw new Error(`${variant}: ${simulator.state.counters.accepted} of ${MESSAGES} accepted`)
  }
  return {
    variant,
    messagesPerSecond: MESSAGES / seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    redisCpuSeconds: redisCpu / 1e6,
  }
}

const samples: Sample[] = []
for (let round = 0; round < ROUNDS; round++) {
  for (const variant of round % 2 === 0 ? (['unordered', 'ordered'] as const) : (['ordered', 'unordered'] as const)) {
    const sample = await runVariant(variant, round)
    log(
      `${variant} round ${round + 1}: ${sample.messagesPerSecond.toFixed(0)} msg/s, CPU ${sample.cpuSeconds.toFixed(2)} s, redis CPU ${sample.redisCpuSeconds.toFixed(2)} s, load ${loadavg()[0]!.toFixed(1)}`,
    )
    samples.push(sample)
  }
}

// Redis memory per parked user: the marks hash plus the deadlines sorted set.
const order = new UserOrder(
  redis,
  'bench-parked',
  { releaseMs: 1_800_000, maxParkedPerUser: 100, maxUsers: PARKED },
  { parkedUsers: () => {}, released: () => {} },
)
const memoryBefore = await usedMemory(redis)
for (let from = 0; from < PARKED; from += 1000) {
  const users = Array.from({ length: Math.min(1000, PARKED - from) }, (_, i) => `bench-user-${from + i}`)
  await order.park(users.map((user) => ({ user: orderUserOf(Buffer.from(user))!, ticket: undefined })))
}
const memoryAfter = await usedMemory(redis)
const memoryUsage =
  Number(await redis.call('MEMORY', 'USAGE', orderMarksKey('bench-parked'), 'SAMPLES', '0')) +
  Number(await redis.call('MEMORY', 'USAGE', orderDeadlinesKey('bench-parked'), 'SAMPLES', '0'))

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}
const rows = (['unordered', 'ordered'] as const).map((variant) => {
  const of = samples.filter((s) => s.variant === variant)
  return {
    variant,
    'messages/s (median)': Math.round(median(of.map((s) => s.messagesPerSecond))),
    'CPU s (median)': Number(median(of.map((s) => s.cpuSeconds)).toFixed(2)),
    'redis CPU s (median)': Number(median(of.map((s) => s.redisCpuSeconds)).toFixed(2)),
  }
})
console.log(
  `per-user order, ${MESSAGES} messages in batches of ${BATCH}, ${PER_USER} per user, ${ROUNDS} rounds (load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')})`,
)
console.table(rows)
console.log(
  `${PARKED} parked users: ${((memoryAfter - memoryBefore) / PARKED).toFixed(1)} B/user of used_memory, ${(memoryUsage / PARKED).toFixed(1)} B/user by MEMORY USAGE`,
)

await sender.close()
await simulator.close()
redis.disconnect()
await redisServer.stop()
