// The segment service alone, between Kafka and the Segment simulator:
//   node --conditions=@lookstream/source bench/e2e/segment-service.ts [--messages 100000] [--rate 2000] [--seconds 20]
//   [--cpu-prof DIR] [--source] [--env NAME=VALUE]… [--node-arg FLAG]…
//   (--seconds 0: the backlog only; --cpu-prof: V8 CPU profile of the service, written as it exits; --source: run it
//   from its TypeScript sources instead of as `pnpm start` does, compiled with its start script's flags)
// 1. backlog: --messages identify messages are on lookstream.identify.v1 (6 partitions) before the service starts;
//    from the service being ready to the last event accepted by the simulator, in events/s;
// 2. steady: messages produced at --rate per second for --seconds while the service runs; per event, the
//    simulator's acceptance time minus the time its produce call started (Kafka produce included).
// local-kafka (on disk), redis-server and the service are their own processes; the simulator (no rate limit) and
// the producer run in this process. The service runs at SEGMENT_RATE_LIMIT_RPS=1000 with its default batching.
import { startSegmentSimulator } from '@lookstream/simulators'
import { buildProject, readStartCommand, spawnService } from '@lookstream/testing'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { envPairs } from '../env-pairs.ts'
import { cpuSeconds, peakRssBytes } from '../ingress/proc-stats.ts'
import { identify, identifyProducer, startKafkaAndRedis, stopsFor } from './identify-backlog.ts'

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '20' },
    'cpu-prof': { type: 'string' },
    /** Run the service as its `pnpm start` does (compiled, with its start script's Node flags and environment). */
    source: { type: 'boolean', default: false },
    /** More environment for the service, e.g. --env DELIVERY_MAX_IN_FLIGHT_MESSAGES=5000 (repeatable). */
    env: { type: 'string', multiple: true, default: [] },
    /** Node flags for the service, e.g. --node-arg=--max-old-space-size=128 (repeatable). */
    'node-arg': { type: 'string', multiple: true, default: [] },
  },
})
const EXTRA_ENV = envPairs(args.env)
const MESSAGES = Number(args.messages)
const RATE = Number(args.rate)
const STEADY = Math.round(RATE * Number(args.seconds))
const SEGMENT_DIR = new URL('../../services/segment/', import.meta.url).pathname
const WRITE_KEY = 'bench-write-key'

const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)
const now = () => performance.timeOrigin + performance.now()

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

const dataDir = mkdtempSync(join(tmpdir(), 'bench-segment-'))
const stops = stopsFor(dataDir)

try {
  const { kafka, redis } = await startKafkaAndRedis(dataDir, stops)
  const simulator = await startSegmentSimulator({
    writeKeys: [WRITE_KEY],
    rateLimit: null,
    maxItems: MESSAGES + STEADY + 1000,
    maxRequests: 100_000,
  })
  stops.push(() => simulator.close())
  const { send, produce } = await identifyProducer(kafka.brokers, stops)

  log(`backlog: producing ${MESSAGES} identify messages`)
  const backlogRun = 'backlog'
  await produce(backlogRun, MESSAGES)
  const start = args.source ? undefined : readStartCommand(SEGMENT_DIR)
  if (start !== undefined) buildProject(SEGMENT_DIR)
  const service = await spawnService(
    start?.entry ?? join(SEGMENT_DIR, 'src/main.ts'),
    {
      ...start?.env,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: kafka.brokers,
      REDIS_URL: redis.url,
      SEGMENT_WRITE_KEY: WRITE_KEY,
      SEGMENT_API_URL: simulator.url,
      SEGMENT_RATE_LIMIT_RPS: '1000',
      ...EXTRA_ENV,
    },
    {
      readyTimeoutMs: 60_000,
      compiled: start !== undefined,
      // spawnService passes only PATH/HOME/TMPDIR/LANG, so NODE_OPTIONS would not reach the service.
      nodeArgs: [
        ...(start?.nodeArgs ?? []),
        ...args['node-arg'],
        ...(args['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(args['cpu-prof'])}`]),
      ],
    },
  )
  stops.push(() => service.stop('SIGTERM', 20_000))
  const backlogStart = now()
  const cpuStart = cpuSeconds(service.pid)
  while (simulator.state.acceptedIds.size < MESSAGES) {
    if (now() - backlogStart > 300_000) throw new Error(`only ${simulator.state.acceptedIds.size} accepted`)
    await sleep(20)
  }
  const lastAccepted = simulator.state.accepted.toArray().reduce((max, item) => Math.max(max, item.acceptedAt), 0)
  const backlogSeconds = (lastAccepted - backlogStart) / 1000
  const backlogCpu = cpuSeconds(service.pid) - cpuStart
  const requests = simulator.state.counters.requests
  log(
    `backlog: ${MESSAGES} events in ${backlogSeconds.toFixed(2)} s = ${Math.round(MESSAGES / backlogSeconds)} events/s, ` +
      `${requests} requests (${Math.round(MESSAGES / requests)} events each), service CPU ${Math.round((100 * backlogCpu) / backlogSeconds)}%, ` +
      `service peak RSS ${(peakRssBytes(service.pid) / 1048576).toFixed(1)} MiB`,
  )

  // --seconds 0 (or --rate 0) measures the backlog only.
  if (STEADY > 0) {
    log(`steady: ${RATE} messages/s for ${args.seconds} s`)
    const steadyRun = 'steady'
    const producedAt = new Float64Array(STEADY)
    const ackedAt = new Float64Array(STEADY)
    const started = now()
    const pending: Promise<unknown>[] = []
    for (let i = 0; i < STEADY; i++) {
      const due = started + (i * 1000) / RATE
      const wait = due - now()
      if (wait > 1) await sleep(wait)
      producedAt[i] = now()
      pending.push(
        send(identify(steadyRun, i)).then(() => {
          ackedAt[i] = now()
        }),
      )
    }
    await Promise.all(pending)
    const prefix = `${steadyRun}-`
    const deadline = now() + 60_000
    let steadyAccepted = 0
    while (steadyAccepted < STEADY && now() < deadline) {
      await sleep(50)
      steadyAccepted = simulator.state.acceptedIds.size - MESSAGES
    }
    const latencies = new Float64Array(STEADY)
    let n = 0
    for (const item of simulator.state.accepted.toArray()) {
      if (item.id?.startsWith(prefix))
        latencies[n++] = item.acceptedAt - producedAt[Number(item.id.slice(prefix.length))]!
    }
    const sorted = latencies.subarray(0, n).sort()
    const acks = ackedAt.map((at, i) => at - producedAt[i]!).sort()
    log(
      `steady: ${n}/${STEADY} accepted; latency produce → accepted p50 ${percentile(sorted, 50).toFixed(1)} ms, ` +
        `p95 ${percentile(sorted, 95).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, max ${sorted[n - 1]?.toFixed(1)} ms`,
    )
    log(
      `steady: of which Kafka produce until acknowledged p50 ${percentile(acks, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(acks, 99).toFixed(1)} ms`,
    )
  }
  log(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`)
} finally {
  await stops.stopAll()
}
