// The mparticle service beside the segment service, each draining the same backlog to its simulator:
//   node --conditions=@lookstream/source bench/destinations/mparticle.ts [--messages 1000000] [--rate-seconds 60]
//     [--skip-segment] [--others 0.3] [--env KEY=VALUE ...]
// 1. throughput: --messages profile rows wait on lookstream.identify.v1 (as the ingress writes them: identities,
//    looker_* attributes), the service starts with its limit raised out of the way; events/s from ready to the last
//    batch accepted, and the service's peak RSS; then the same for the segment service and Segment identify rows;
// 2. rate (--rate-seconds > 0): the simulator enforces mParticle's default 270 batches per second (fixed
//    one-second windows that start with a request, 429 beyond), the service runs with its defaults (plus --env);
//    a backlog of 270 × seconds rows; the measured batches/s over the run, the simulator's 429 count, and the
//    bookings the service gave up because it woke too late for them;
// 3. with --others 0.3: the same twice while another client of the account sends 30 % of its limit, once with
//    the service reading X-mp-rate-limit-percentage-used and once with MPARTICLE_USAGE_HEADER=false.
// Both services run as their `pnpm start` runs them (compiled, start script flags). Every process is its own
// except the simulators and the producer (this process).
import { headersFor, type CanonicalMessage } from '@lookstream/events'
import {
  startAccountLoad,
  startMparticleSimulator,
  startSegmentSimulator,
  type Simulator,
} from '@lookstream/simulators'
import { buildProject, readStartCommand, spawnService, type SpawnedService } from '@lookstream/testing'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { envPairs } from '../env-pairs.ts'
import { cpuSeconds, peakRssBytes } from '../ingress/proc-stats.ts'
import { identify, identifyProducer, startKafkaAndRedis, stopsFor } from '../e2e/identify-backlog.ts'

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    'rate-seconds': { type: 'string', default: '60' },
    'skip-segment': { type: 'boolean', default: false },
    // KEY=VALUE for the rate phases' service, repeatable (e.g. MPARTICLE_USAGE_HEADER=false)
    env: { type: 'string', multiple: true, default: [] },
    // share of the limit another client of the account uses in the extra rate phases (0: not run)
    others: { type: 'string', default: '0' },
  },
})
const RATE_ENV = envPairs(args.env)
const MESSAGES = Number(args.messages)
const RATE_SECONDS = Number(args['rate-seconds'])
const OTHERS = Number(args.others)
if (!(OTHERS >= 0 && OTHERS < 1)) throw new Error('--others takes a share of the limit from 0 to below 1')
const ROOT = new URL('../../', import.meta.url).pathname
const KEY = 'bench-mparticle-key'
const SECRET = 'bench-mparticle-secret'
const WRITE_KEY = 'bench-write-key'

const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)
const now = () => performance.timeOrigin + performance.now()
const mib = (bytes: number) => (bytes / 1048576).toFixed(1)

function profile(run: string, index: number): CanonicalMessage {
  const id = `${run}-${index}`
  return {
    type: 'identify',
    messageId: id,
    userId: id,
    traits: { 'looker_users.plan': index % 3 === 0 ? 'annual' : 'monthly', 'looker_users.ltv': index % 997 },
    context: {
      lookstream: { sendId: `bench-${run}`, row: index, action: 'mparticle' },
      identities: { customer_id: id, email: `user${index}@example.com` },
    } as CanonicalMessage['context'],
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: {
      All: false,
      mParticle: { connection: 'default', environment: 'production', dataType: 'user_data', eventType: 'other' },
    },
  }
}

async function startService(name: string, env: Record<string, string>): Promise<SpawnedService> {
  const dir = join(ROOT, 'services', name)
  buildProject(dir)
  const start = readStartCommand(dir)
  return spawnService(
    start.entry,
    { ...start.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    { readyTimeoutMs: 60_000, compiled: true, nodeArgs: start.nodeArgs },
  )
}

/** Waits until the simulator accepted `count` items; returns seconds from `from` to the last acceptance. */
async function drained(simulator: Simulator, count: number, from: number, limitMs: number): Promise<number> {
  while (simulator.state.acceptedIds.size < count) {
    if (now() - from > limitMs) throw new Error(`only ${simulator.state.acceptedIds.size} of ${count} accepted`)
    await sleep(50)
  }
  const last = simulator.state.accepted.toArray().reduce((max, item) => Math.max(max, item.acceptedAt), 0)
  return (last - from) / 1000
}

const dataDir = mkdtempSync(join(tmpdir(), 'bench-mparticle-'))
const stops = stopsFor(dataDir)
try {
  const { kafka, redis } = await startKafkaAndRedis(dataDir, stops)
  const { producer, send } = await identifyProducer(kafka.brokers, stops)
  const sendProfile = (message: CanonicalMessage) =>
    producer.send({
      topic: 'lookstream.identify.v1',
      key: message.userId ?? null,
      value: JSON.stringify(message),
      headers: headersFor(message, { producer: 'ingress' }),
    })
  const produce = async (count: number, one: (i: number) => Promise<unknown>) => {
    for (let i = 0; i < count; i += 5000)
      await Promise.all(Array.from({ length: Math.min(5000, count - i) }, (_, j) => one(i + j)))
  }
  const base = { KAFKA_BROKERS: kafka.brokers, REDIS_URL: redis.url }

  // 1. throughput, mparticle then segment, the same number of rows each.
  const mparticleSim = await startMparticleSimulator({
    credentials: [{ key: KEY, secret: SECRET }],
    rateLimit: null,
    maxItems: 1000,
  })
  stops.push(() => mparticleSim.close())
  log(`throughput: producing ${MESSAGES} mParticle profile rows`)
  await produce(MESSAGES, (i) => sendProfile(profile('tp', i)))
  const mp = await startService('mparticle', {
    ...base,
    MPARTICLE_API_KEY: KEY,
    MPARTICLE_API_SECRET: SECRET,
    MPARTICLE_API_URL: `${mparticleSim.url}/v2`,
    MPARTICLE_BATCHES_PER_SECOND: '100000',
  })
  const mpStart = now()
  const mpCpu = cpuSeconds(mp.pid)
  const mpSeconds = await drained(mparticleSim, MESSAGES, mpStart, 1_800_000)
  const mpRss = peakRssBytes(mp.pid)
  log(
    `mparticle: ${MESSAGES} rows in ${mpSeconds.toFixed(2)} s = ${Math.round(MESSAGES / mpSeconds)} rows/s, ` +
      `${mparticleSim.state.counters.requests} requests, CPU ${Math.round((100 * (cpuSeconds(mp.pid) - mpCpu)) / mpSeconds)}%, peak RSS ${mib(mpRss)} MiB`,
  )
  await mp.stop('SIGTERM', 20_000)

  if (!args['skip-segment']) {
    const segmentSim = await startSegmentSimulator({ writeKeys: [WRITE_KEY], rateLimit: null, maxItems: 1000 })
    stops.push(() => segmentSim.close())
    log(`throughput: producing ${MESSAGES} Segment identify rows`)
    await produce(MESSAGES, (i) => send(identify('tp', i)))
    const segment = await startService('segment', {
      ...base,
      SEGMENT_WRITE_KEY: WRITE_KEY,
      SEGMENT_API_URL: segmentSim.url,
      SEGMENT_RATE_LIMIT_RPS: '1000',
    })
    const sgStart = now()
    const sgCpu = cpuSeconds(segment.pid)
    const sgSeconds = await drained(segmentSim, MESSAGES, sgStart, 1_800_000)
    log(
      `segment: ${MESSAGES} rows in ${sgSeconds.toFixed(2)} s = ${Math.round(MESSAGES / sgSeconds)} rows/s, ` +
        `CPU ${Math.round((100 * (cpuSeconds(segment.pid) - sgCpu)) / sgSeconds)}%, peak RSS ${mib(peakRssBytes(segment.pid))} MiB`,
    )
    await segment.stop('SIGTERM', 20_000)
  }

  // 2. rate fidelity at mParticle's default limit; 3. the same with another client of the account using part of
  //    it, with and without the usage header read.
  const metricOf = async (service: SpawnedService, name: string): Promise<number | undefined> => {
    const text = await (await fetch(`${service.url}/metrics`)).text()
    const values = text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)))
    return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0)
  }
  const ratePhase = async (label: string, run: string, env: Record<string, string>, othersShare: number) => {
    const rows = 270 * RATE_SECONDS
    const limited = await startMparticleSimulator({
      credentials: [{ key: KEY, secret: SECRET }],
      maxItems: 2 * rows + 1000,
    })
    stops.push(() => limited.close())
    log(`${label}: producing ${rows} rows; the simulator allows 270 batches per second`)
    await produce(rows, (i) => sendProfile(profile(run, i)))
    const others =
      othersShare > 0
        ? startAccountLoad({
            url: `${limited.url}/v2`,
            key: KEY,
            secret: SECRET,
            batchesPerSecond: 270 * othersShare,
            batchesPerRequest: 3,
          })
        : undefined
    const service = await startService('mparticle', {
      ...base,
      MPARTICLE_API_KEY: KEY,
      MPARTICLE_API_SECRET: SECRET,
      MPARTICLE_API_URL: `${limited.url}/v2`,
      ...env,
    })
    const started = now()
    await drained(limited, rows, started, RATE_SECONDS * 6000 + 60_000)
    const othersResult = await others?.stop()
    const accepted = limited.state.accepted
      .toArray()
      .filter((item) => item.id !== undefined)
      .map((item) => item.acceptedAt)
    const first = Math.min(...accepted)
    const last = Math.max(...accepted)
    const rate = (rows - 1) / ((last - first) / 1000)
    const tooMany = (limited.state.counters.requestsByStatus['429'] ?? 0) - (othersResult?.tooMany ?? 0)
    const late = (await metricOf(service, 'lookstream_destination_rate_limit_late_total')) ?? 0
    const hints = (await metricOf(service, 'lookstream_destination_rate_hints_total')) ?? 0
    log(
      `${label}: ${rows} batches, first to last accepted ${((last - first) / 1000).toFixed(1)} s = ${rate.toFixed(1)} batches/s ` +
        `(${((100 * rate) / 270).toFixed(1)} % of 270), ${limited.state.counters.requests - (othersResult?.requests ?? 0)} requests, ` +
        `service 429s: ${tooMany}, late bookings given up: ${late}, usage hints: ${hints}` +
        (othersResult === undefined
          ? ''
          : `; other client: ${othersResult.batches} batches in ${othersResult.requests} requests, ${othersResult.tooMany} answered 429`),
    )
    await service.stop('SIGTERM', 20_000)
  }
  if (RATE_SECONDS > 0) {
    await ratePhase('rate', 'rate', RATE_ENV, 0)
    if (OTHERS > 0) {
      const share = `${Math.round(OTHERS * 100)} %`
      await ratePhase(`rate, another client at ${share}, usage header read`, 'rate-h', RATE_ENV, OTHERS)
      await ratePhase(
        `rate, another client at ${share}, usage header ignored`,
        'rate-n',
        {
          ...RATE_ENV,
          MPARTICLE_USAGE_HEADER: 'false',
        },
        OTHERS,
      )
    }
  }
  log(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`)
} finally {
  await stops.stopAll()
}
