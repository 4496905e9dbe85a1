// The heap service between Kafka and the Heap simulator, two scenarios:
//   node --conditions=@lookstream/source bench/heap/run.ts --scenario pace [--rows 60000] [--items-per-minute 15000]
//     [--replicas 1,2]
//   node --conditions=@lookstream/source bench/heap/run.ts --scenario throughput [--rows 1000000]
// pace: the simulator enforces --items-per-minute per app (fixed one-minute windows, as its defaults model Heap's
//   15,000/min, plus 1,000 per identity per minute); --rows user updates are on Kafka before the service starts, and
//   the service runs with HEAP_ITEMS_PER_MINUTE at the same figure. Reported: the send's duration (first request to
//   last accepted), against rows / (items per minute), the simulator's 429s, and the send record's progress as it
//   moves. Once per replica count, each on a fresh stack.
// throughput: limits out of the way; the Segment pipeline (the segment service on a backlog of --rows identify
//   messages, as bench/e2e/segment-service.ts) and then the heap pipeline (the heap service on --rows user updates),
//   each on a fresh stack in this same run: rows/s from the service being ready to the last row accepted, and the
//   service's peak RSS.
// local-kafka (on disk), redis-server and the services are their own processes (the services as their `pnpm start`
// runs them: compiled, with its Node flags); the simulators and the producer run in this process.
import { headersFor, sendRecordKey, type CanonicalMessage } from '@lookstream/events'
import { startHeapSimulator, startSegmentSimulator, type Simulator } from '@lookstream/simulators'
import { buildProject, readStartCommand, spawnService, type SpawnedService } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { identify, identifyProducer, startKafkaAndRedis, stopsFor } from '../e2e/identify-backlog.ts'
import { cpuSeconds, peakRssBytes } from '../ingress/proc-stats.ts'

const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'pace' },
    rows: { type: 'string' },
    'items-per-minute': { type: 'string', default: '15000' },
    replicas: { type: 'string', default: '1,2' },
  },
})
const SCENARIO = args.scenario
if (SCENARIO !== 'pace' && SCENARIO !== 'throughput') throw new Error('--scenario is pace or throughput')
const ROWS = Number(args.rows ?? (SCENARIO === 'pace' ? 60_000 : 1_000_000))
const ITEMS_PER_MINUTE = Number(args['items-per-minute'])
const APP_ID = '1234567890'
const HEAP_DIR = new URL('../../services/heap/', import.meta.url).pathname
const SEGMENT_DIR = new URL('../../services/segment/', import.meta.url).pathname
const WRITE_KEY = 'bench-write-key'

const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)
const now = () => performance.timeOrigin + performance.now()

/** A user update as the ingress writes it for a heap send of a Look with four columns besides the join key. */
function heapUser(run: string, index: number): CanonicalMessage {
  return {
    type: 'identify',
    messageId: `${run}-${index}`,
    userId: `user${index}@example.com`,
    traits: {
      'Users Plan': index % 3 === 0 ? 'annual' : 'monthly',
      'Users Lifetime Value': index % 997,
      'Users Country': index % 2 === 0 ? 'FR' : 'US',
      Email: `user${index}@example.com`,
    },
    context: { lookstream: { sendId: `bench-${run}`, row: index, action: 'heap' } },
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: { All: false, Heap: { connection: 'default', propertyType: 'user', joinKey: 'Users Id' } },
  }
}

interface Started {
  services: SpawnedService[]
  readyAt: number
}

async function startServices(
  dir: string,
  env: Record<string, string>,
  replicas: number,
  stops: ReturnType<typeof stopsFor>,
): Promise<Started> {
  const start = readStartCommand(dir)
  buildProject(dir)
  const services: SpawnedService[] = []
  for (let i = 0; i < replicas; i++) {
    const service = await spawnService(
      start.entry,
      { ...start.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
      { readyTimeoutMs: 60_000, compiled: true, nodeArgs: start.nodeArgs },
    )
    stops.push(() => service.stop('SIGTERM', 20_000))
    services.push(service)
  }
  return { services, readyAt: now() }
}

async function produceAll(
  send: (message: CanonicalMessage) => Promise<unknown>,
  build: (index: number) => CanonicalMessage,
  count: number,
): Promise<void> {
  for (let i = 0; i < count; i += 5000) {
    await Promise.all(Array.from({ length: Math.min(5000, count - i) }, (_, j) => send(build(i + j))))
  }
}

async function pace(replicas: number): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-heap-pace-'))
  const stops = stopsFor(dataDir)
  try {
    const { kafka, redis } = await startKafkaAndRedis(dataDir, stops)
    const simulator = await startHeapSimulator({
      appIds: [APP_ID],
      rateLimits: { appEvents: { limit: ITEMS_PER_MINUTE, windowMs: 60_000 } },
      maxItems: 1000,
      maxRequests: 100_000,
    })
    stops.push(() => simulator.close())
    const { producer } = await identifyProducer(kafka.brokers, stops)
    const run = `pace${replicas}`
    const sendId = `bench-${run}`
    const client = new Redis(redis.url)
    stops.push(() => Promise.resolve(client.disconnect()))
    // The ingress's send record: the service adds its delivered counts to it.
    await client.hset(sendRecordKey(sendId), { send_id: sendId, accepted: String(ROWS) })
    log(`pace, ${replicas} replica(s): producing ${ROWS} user updates`)
    await produceAll(
      (message) =>
        producer.send({
          topic: 'lookstream.identify.v1',
          key: message.userId ?? null,
          value: JSON.stringify(message),
          headers: headersFor(message, { producer: 'ingress', sendId }),
        }),
      (i) => heapUser(run, i),
      ROWS,
    )
    const { readyAt } = await startServices(
      HEAP_DIR,
      {
        KAFKA_BROKERS: kafka.brokers,
        REDIS_URL: redis.url,
        HEAP_APP_ID: APP_ID,
        HEAP_API_URL: simulator.url,
        HEAP_ITEMS_PER_MINUTE: String(ITEMS_PER_MINUTE),
      },
      replicas,
      stops,
    )
    let lastProgress = now()
    const progress: string[] = []
    while (simulator.state.counters.accepted < ROWS) {
      if (now() - readyAt > (ROWS / ITEMS_PER_MINUTE) * 60_000 * 2 + 60_000) {
        throw new Error(`only ${simulator.state.counters.accepted} accepted`)
      }
      if (now() - lastProgress >= 30_000) {
        lastProgress = now()
        const delivered = (await client.hget(sendRecordKey(sendId), 'delivered')) ?? '0'
        const line = `${Math.round((now() - readyAt) / 1000)} s: simulator ${simulator.state.counters.accepted}, send record delivered ${delivered}`
        progress.push(line)
        log(`  ${line}`)
      }
      await sleep(50)
    }
    const accepted = simulator.state.requests.toArray().filter((r) => r.status === 200)
    const first = Math.min(...accepted.map((r) => r.receivedAt))
    const last = Math.max(...accepted.map((r) => r.respondedAt))
    const seconds = (last - first) / 1000
    const expected = (ROWS / ITEMS_PER_MINUTE) * 60
    log(
      `pace, ${replicas} replica(s): ${ROWS} rows in ${seconds.toFixed(1)} s (first request → last accepted) = ` +
        `${((seconds / expected) * 100).toFixed(1)}% of ${expected} s at ${ITEMS_PER_MINUTE} items/min; ` +
        `${accepted.length} requests, simulator 429s: ${simulator.state.counters.rateLimited}, ` +
        `ready → last accepted ${((last - readyAt) / 1000).toFixed(1)} s`,
    )
  } finally {
    await stops.stopAll()
  }
}

async function throughput(
  name: string,
  dir: string,
  simulatorOf: () => Promise<Simulator>,
  accepted: (simulator: Simulator) => number,
  build: (index: number) => CanonicalMessage,
  env: (simulator: Simulator) => Record<string, string>,
): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), `bench-${name}-`))
  const stops = stopsFor(dataDir)
  try {
    const { kafka, redis } = await startKafkaAndRedis(dataDir, stops)
    const simulator = await simulatorOf()
    stops.push(() => simulator.close())
    const { send } = await identifyProducer(kafka.brokers, stops)
    log(`${name}: producing ${ROWS} identify messages`)
    await produceAll(send, build, ROWS)
    const { services, readyAt } = await startServices(
      dir,
      { KAFKA_BROKERS: kafka.brokers, REDIS_URL: redis.url, ...env(simulator) },
      1,
      stops,
    )
    const service = services[0]!
    const cpuStart = cpuSeconds(service.pid)
    while (accepted(simulator) < ROWS) {
      if (now() - readyAt > 600_000) throw new Error(`${name}: only ${accepted(simulator)} accepted`)
      await sleep(20)
    }
    const seconds = (now() - readyAt) / 1000
    log(
      `${name}: ${ROWS} rows in ${seconds.toFixed(2)} s = ${Math.round(ROWS / seconds)} rows/s, ` +
        `${simulator.state.counters.requests} requests, service CPU ${Math.round((100 * (cpuSeconds(service.pid) - cpuStart)) / seconds)}%, ` +
        `service peak RSS ${(peakRssBytes(service.pid) / 1048576).toFixed(1)} MiB`,
    )
  } finally {
    await stops.stopAll()
  }
}

if (SCENARIO === 'pace') {
  for (const replicas of args.replicas.split(',').map(Number)) await pace(replicas)
} else {
  await throughput(
    'segment',
    SEGMENT_DIR,
    () => startSegmentSimulator({ writeKeys: [WRITE_KEY], rateLimit: null, maxItems: 1000, maxRequests: 10_000 }),
    (simulator) => simulator.state.acceptedIds.size,
    (i) => identify('segment', i),
    (simulator) => ({ SEGMENT_WRITE_KEY: WRITE_KEY, SEGMENT_API_URL: simulator.url, SEGMENT_RATE_LIMIT_RPS: '1000' }),
  )
  await throughput(
    'heap',
    HEAP_DIR,
    () =>
      startHeapSimulator({
        appIds: [APP_ID],
        rateLimits: { identityRequests: null, identityEvents: null, appEvents: null },
        maxItems: 1000,
        maxRequests: 10_000,
      }),
    (simulator) => simulator.state.counters.accepted,
    (i) => heapUser('heap', i),
    (simulator) => ({
      HEAP_APP_ID: APP_ID,
      HEAP_API_URL: simulator.url,
      // Out of the way: Heap's own 15,000 items/min would make this a 67-minute send.
      HEAP_ITEMS_PER_MINUTE: '100000000',
      HEAP_IDENTITY_ITEMS_PER_MINUTE: '100000000',
    }),
  )
}
log(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`)
