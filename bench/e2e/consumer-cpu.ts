// CPU per event on the consuming side: a destination service (segment, or braze) and its simulator, each its own
// process.
//   node --conditions=@lookstream/source bench/e2e/consumer-cpu.ts [--destination segment|braze]
//        [--messages 100000] [--warmup 5000] [--root DIR] [--cpu-prof DIR]
//        [--service-node-arg=--max-semi-space-size=32 ...] [--env NAME=VALUE ...]
// Braze's messages are what the ingress makes of the destination pipeline benchmark's Braze Look (external_id, four
// attributes, the default export label, update-existing-only off); its simulator runs without rate limits, so the
// service's own default schedule (1,000 requests a second) is the only one. --env sets the service's environment.
// Both destinations' messageIds are `<run>-<n>`, not the UUIDs the ingress makes: the dedupe keeps them through its
// hashed form (a SHA-256 per id), so the figures carry that cost for both alike.
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
import { envPairs } from '../env-pairs.ts'
import { cpuSeconds } from '../ingress/proc-stats.ts'
import { brazeIdentify, identify, identifyProducer, startKafkaAndRedis, stopsFor } from './identify-backlog.ts'

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    warmup: { type: 'string', default: '5000' },
    root: { type: 'string', default: new URL('../..', import.meta.url).pathname },
    'cpu-prof': { type: 'string' },
    'service-node-arg': { type: 'string', multiple: true, default: [] },
    destination: { type: 'string', default: 'segment' },
    env: { type: 'string', multiple: true, default: [] },
  },
})
const EXTRA_ENV: Record<string, string> = envPairs(args.env)
const DESTINATION = args.destination
if (DESTINATION !== 'segment' && DESTINATION !== 'braze') throw new Error('--destination is segment or braze')
const BRAZE_API_KEY = 'bench-braze-api-key'
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
      ...(DESTINATION === 'segment'
        ? ['--segment-port', '0', '--segment-write-key', WRITE_KEY]
        : ['--braze-port', '0', '--braze-api-key', BRAZE_API_KEY]),
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
  const { produce } = await identifyProducer(kafka.brokers, stops, DESTINATION === 'braze' ? brazeIdentify : identify)
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
      ...(DESTINATION === 'segment'
        ? { SEGMENT_WRITE_KEY: WRITE_KEY, SEGMENT_API_URL: simulator.url, SEGMENT_RATE_LIMIT_RPS: '1000' }
        : {
            BRAZE_API_KEY,
            BRAZE_REST_ENDPOINT: simulator.url,
            BRAZE_ALLOWED_HOSTS: new URL(simulator.url).host,
          }),
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
