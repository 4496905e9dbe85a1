// CPU per event on the consuming side: a destination service (segment, braze or mparticle) and its simulator, each
// its own process.
//   node --conditions=@lookstream/source bench/e2e/consumer-cpu.ts [--destination segment|braze|mparticle]
//        [--messages 100000] [--warmup 5000] [--uuid-ids] [--root DIR] [--cpu-prof DIR]
//        [--service-node-arg=--max-semi-space-size=32 ...] [--env NAME=VALUE ...]
// Braze's and mParticle's messages are what the ingress makes of the destination pipeline benchmark's Looks (Braze:
// external_id, four attributes, the default export label, update-existing-only off; mParticle: user profiles with
// customer_id, email and three user attributes); the simulators run without rate limits, so the service's own
// default schedule is the only one (Braze 1,000 requests a second; mParticle's raised to 100,000 batches a second,
// as the pipeline benchmark raises it). --env sets the service's environment.
// messageIds are `<run>-<n>` unless --uuid-ids makes them UUIDs as the ingress does (a UUIDv5 of `<run>-<n>`): the
// dedupe keeps other ids through a SHA-256 of each, and mParticle derives a UUID from them, so --uuid-ids is what
// a Looker send costs.
// --warmup identify messages wait on lookstream.identify.v1 (6 partitions); the service starts and delivers them
// (JIT, connections, group join); then --messages more are produced as fast as this process can, while the
// service consumes them. Printed: CPU seconds per 100,000 events of the service, the simulator, local-kafka and
// redis-server between the warm-up's last acceptance and the last event accepted. --root runs the service and the
// simulator from another checkout (A/B comparisons of two builds on the same machine, alternating runs);
// --cpu-prof writes V8 CPU profiles of the service and the simulator into DIR when they exit.
import { spawnService } from '@lookstream/testing'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { uuidV5, type CanonicalMessage } from '@lookstream/events'
import { envPairs } from '../env-pairs.ts'
import { cpuSeconds } from '../ingress/proc-stats.ts'
import {
  brazeIdentify,
  identify,
  identifyProducer,
  mparticleIdentify,
  startKafkaAndRedis,
  stopsFor,
} from './identify-backlog.ts'

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    warmup: { type: 'string', default: '5000' },
    root: { type: 'string', default: new URL('../..', import.meta.url).pathname },
    'cpu-prof': { type: 'string' },
    'service-node-arg': { type: 'string', multiple: true, default: [] },
    destination: { type: 'string', default: 'segment' },
    env: { type: 'string', multiple: true, default: [] },
    'uuid-ids': { type: 'boolean', default: false },
  },
})
const EXTRA_ENV: Record<string, string> = envPairs(args.env)
const DESTINATIONS = ['segment', 'braze', 'mparticle'] as const
if (!(DESTINATIONS as readonly string[]).includes(args.destination)) {
  throw new Error('--destination is segment, braze or mparticle')
}
const DESTINATION = args.destination as (typeof DESTINATIONS)[number]
const BRAZE_API_KEY = 'bench-braze-api-key'
const MPARTICLE_KEY = 'bench-mparticle-key'
const MPARTICLE_SECRET = 'bench-mparticle-secret'
const MESSAGE = { segment: identify, braze: brazeIdentify, mparticle: mparticleIdentify }[DESTINATION]
/** A namespace for the UUIDs of --uuid-ids (any fixed UUID: the ids only need to be UUIDs and distinct). */
const ID_NAMESPACE = '1b671a64-40d5-491e-99b0-da01ff1f3341'
const message = args['uuid-ids']
  ? (run: string, index: number): CanonicalMessage => ({
      ...MESSAGE(run, index),
      messageId: uuidV5(`${run}-${index}`, ID_NAMESPACE),
    })
  : MESSAGE
const MESSAGES = Number(args.messages)
const WARMUP = Number(args.warmup)
const ROOT = resolve(args.root)
const WRITE_KEY = 'bench-write-key'
const profile = args['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(args['cpu-prof'])}`]

const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)

async function startSimulator(): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const cli = join(ROOT, 'packages/simulators/src/cli.ts')
  const child = spawn(
    process.execPath,
    [
      '--conditions=@lookstream/source',
      ...profile,
      cli,
      ...{
        segment: ['--segment-port', '0', '--segment-write-key', WRITE_KEY],
        braze: ['--braze-port', '0', '--braze-api-key', BRAZE_API_KEY],
        mparticle: ['--mparticle-port', '0', '--mparticle-key', MPARTICLE_KEY, '--mparticle-secret', MPARTICLE_SECRET],
      }[DESTINATION],
      '--no-rate-limits',
      '--max-items',
      String(MESSAGES + WARMUP + 1000),
      '--max-requests',
      '100000',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const exited = new Promise<void>((done) => child.once('exit', () => done()))
  const url = await new Promise<string>((done, fail) => {
    child.once('exit', (code) => fail(new Error(`simulator exited (${code})`)))
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^(\S+) simulator listening on (\S+)$/.exec(line)
      if (match?.[1] === DESTINATION) done(match[2]!)
    })
  })
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
    },
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'bench-consumer-cpu-'))
const stops = stopsFor(dataDir)

try {
  const { kafka, redis } = await startKafkaAndRedis(dataDir, stops)
  const simulator = await startSimulator()
  stops.push(() => simulator.stop())
  const { produce } = await identifyProducer(kafka.brokers, stops, message)
  const accepted = async () => {
    const res = await request(`${simulator.url}/__admin/state`)
    const state = (await res.body.json()) as {
      counters: { acceptedIds: number; duplicates: number; requests: number }
    }
    return state.counters
  }
  const waitAccepted = async (count: number) => {
    const deadline = Date.now() + 300_000
    for (;;) {
      const counters = await accepted()
      if (counters.acceptedIds >= count) return counters
      if (Date.now() > deadline)
        throw new Error(`only ${counters.acceptedIds} of ${count} accepted (${counters.requests} requests)`)
      await sleep(100)
    }
  }

  await produce('warmup', WARMUP)
  const service = await spawnService(
    join(ROOT, `services/${DESTINATION}/src/main.ts`),
    {
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: kafka.brokers,
      REDIS_URL: redis.url,
      ...{
        segment: { SEGMENT_WRITE_KEY: WRITE_KEY, SEGMENT_API_URL: simulator.url, SEGMENT_RATE_LIMIT_RPS: '1000' },
        braze: { BRAZE_API_KEY, BRAZE_REST_ENDPOINT: simulator.url, BRAZE_ALLOWED_HOSTS: new URL(simulator.url).host },
        mparticle: {
          MPARTICLE_API_KEY: MPARTICLE_KEY,
          MPARTICLE_API_SECRET: MPARTICLE_SECRET,
          MPARTICLE_API_URL: `${simulator.url}/v2`,
          MPARTICLE_ALLOWED_HOSTS: new URL(simulator.url).host,
          MPARTICLE_BATCHES_PER_SECOND: '100000',
        },
      }[DESTINATION],
      ...EXTRA_ENV,
    },
    { readyTimeoutMs: 60_000, nodeArgs: [...profile, ...args['service-node-arg']] },
  )
  stops.push(() => service.stop('SIGTERM', 20_000))
  const warm = await waitAccepted(WARMUP).catch((err: unknown) => {
    // What the service said meanwhile (warnings and errors: reasons, never row values).
    const said = service.logs().filter((entry) => entry.level === 'warn' || entry.level === 'error')
    for (const line of said.slice(-5)) log(`service: ${JSON.stringify(line)}`)
    throw err
  })

  const pids = {
    [DESTINATION]: service.pid,
    simulator: simulator.pid,
    'local-kafka': kafka.pid,
    'redis-server': redis.pid,
  }
  const cpuNow = () => Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]))
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ')[0]
  const cpu0 = cpuNow()
  const started = performance.now()
  await produce('measured', MESSAGES)
  const counters = await waitAccepted(WARMUP + MESSAGES)
  const seconds = (performance.now() - started) / 1000
  const cpu1 = cpuNow()
  const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ')[0]
  const per100k = Object.fromEntries(
    Object.keys(cpu0).map((name) => [name, +(((cpu1[name]! - cpu0[name]!) * 100_000) / MESSAGES).toFixed(2)]),
  )
  log(`${MESSAGES} events in ${seconds.toFixed(1)} s, duplicates ${counters.duplicates}, load ${load0} → ${load1}`)
  const requests = counters.requests - warm.requests
  process.stdout.write(
    `${JSON.stringify({ root: ROOT, cpuSecondsPer100k: per100k, seconds: +seconds.toFixed(1), requests, eventsPerRequest: Math.round(MESSAGES / requests) })}\n`,
  )
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  process.exitCode = 1
} finally {
  await stops.stopAll()
}
