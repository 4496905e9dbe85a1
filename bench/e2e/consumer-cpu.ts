// CPU per event on the consuming side: the segment service and the Segment simulator, each its own process.
//   node --conditions=@lookstream/source bench/e2e/consumer-cpu.ts [--messages 100000] [--warmup 5000]
//        [--root DIR] [--cpu-prof DIR] [--service-node-arg=--max-semi-space-size=32 ...]
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
import { cpuSeconds } from '../ingress/proc-stats.ts'
import { identifyProducer, startKafkaAndRedis, stopsFor } from './identify-backlog.ts'

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    warmup: { type: 'string', default: '5000' },
    root: { type: 'string', default: new URL('../..', import.meta.url).pathname },
    'cpu-prof': { type: 'string' },
    'service-node-arg': { type: 'string', multiple: true, default: [] },
  },
})
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
      '--segment-port',
      '0',
      '--segment-write-key',
      WRITE_KEY,
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
      const match = /^segment simulator listening on (\S+)$/.exec(line)
      if (match !== null) done(match[1]!)
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
  const { produce } = await identifyProducer(kafka.brokers, stops)
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
      if (Date.now() > deadline) throw new Error(`only ${counters.acceptedIds} of ${count} accepted`)
      await sleep(100)
    }
  }

  await produce('warmup', WARMUP)
  const service = await spawnService(
    join(ROOT, 'services/segment/src/main.ts'),
    {
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: kafka.brokers,
      REDIS_URL: redis.url,
      SEGMENT_WRITE_KEY: WRITE_KEY,
      SEGMENT_API_URL: simulator.url,
      SEGMENT_RATE_LIMIT_RPS: '1000',
    },
    { readyTimeoutMs: 60_000, nodeArgs: [...profile, ...args['service-node-arg']] },
  )
  stops.push(() => service.stop('SIGTERM', 20_000))
  const warm = await waitAccepted(WARMUP)

  const pids = { segment: service.pid, simulator: simulator.pid, 'local-kafka': kafka.pid, 'redis-server': redis.pid }
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
