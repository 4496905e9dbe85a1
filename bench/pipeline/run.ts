// The whole pipeline, end to end: Looker execute → ingress → local-kafka → segment service → Segment simulator.
//   node --conditions=@lookstream/source bench/pipeline/run.ts [--rows 100000] [--rate 2000] [--seconds 30] [--warmup 5000] [--dump rows.csv]
//        [--cpu-prof <dir>]  (V8 CPU profiles of the ingress and segment service, written when they exit)
// 1. throughput: one --rows identify send (json_detail_lite_stream, streamed from a local Looker stub as fast as
//    the ingress reads it), from the execute POST to the last event the simulator accepted, in events/s;
// 2. latency: a send paced at --rate rows/s for --seconds; per event, the simulator's acceptance time minus the
//    time the Looker stub wrote that row to the socket (the ingress stamps no per-row receipt time).
// Every component is its own process except the Looker stub (this process). The simulator runs without rate
// limits; the segment service at its highest configurable rate (SEGMENT_RATE_LIMIT_RPS=1000).
import { execFile } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs, promisify } from 'node:util'
import { request } from 'undici'
import { startLocalKafka } from '@lookstream/local-kafka'
import { spawnSimulators } from '@lookstream/simulators'
import { buildProject, readStartCommand, spawnService, startRedis } from '@lookstream/testing'
import { rowIndexOf, startLookerSource, type LookSpec } from './looker-source.ts'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5000' },
    dump: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
})
const ROWS = Number(args.rows)
const RATE = Number(args.rate)
const PACED_ROWS = Math.round(RATE * Number(args.seconds))
const WARMUP_ROWS = Number(args.warmup)
// The ingress runs as its `pnpm start` does: compiled, with its start script's Node flags and environment.
const INGRESS_DIR = new URL('../../services/ingress/', import.meta.url).pathname
const SEGMENT_MAIN = new URL('../../services/segment/src/main.ts', import.meta.url).pathname
const WRITE_KEY = 'segment-write-key' // the simulators CLI's default
const SECRET = randomBytes(32).toString('hex')

const run = promisify(execFile)
const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)
const now = () => performance.timeOrigin + performance.now()

function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Number.NaN
  }
}

function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

const dataDir = mkdtempSync(join(tmpdir(), 'bench-pipeline-'))
const stops: (() => Promise<unknown>)[] = []
async function stopAll(): Promise<void> {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined)
  rmSync(dataDir, { recursive: true, force: true })
}
process.once('SIGINT', () => void stopAll().then(() => process.exit(130)))

try {
  log('starting local-kafka (on disk), redis-server, simulators, Looker stub, ingress, segment service')
  const kafka = await startLocalKafka({ port: 0, dataDir, logLevel: 'warn', initialRebalanceDelayMs: 0 })
  stops.push(() => kafka.stop())
  const redis = await startRedis()
  stops.push(() => redis.stop())
  const simulators = await spawnSimulators([
    '--segment-port',
    '0',
    '--no-rate-limits',
    '--max-items',
    String(Math.max(ROWS, PACED_ROWS) + 1000),
    '--max-requests',
    '100000',
  ])
  stops.push(() => simulators.stop())
  const sim = simulators.urls.segment!
  const looker = await startLookerSource()
  stops.push(() => looker.close())
  const common = {
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    KAFKA_BROKERS: kafka.brokers,
    REDIS_URL: redis.url,
    ...(args['cpu-prof'] === undefined ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${args['cpu-prof']}` }),
  }
  buildProject(INGRESS_DIR)
  const started = readStartCommand(INGRESS_DIR)
  const ingress = await spawnService(
    started.entry,
    { ...started.env, ...common, ACTION_HUB_SECRET: SECRET, LOOKER_HOSTS: looker.origin },
    { readyTimeoutMs: 60_000, compiled: true, nodeArgs: started.nodeArgs },
  )
  stops.push(() => ingress.stop('SIGTERM', 10_000))
  const segment = await spawnService(
    SEGMENT_MAIN,
    { ...common, SEGMENT_WRITE_KEY: WRITE_KEY, SEGMENT_API_URL: sim, SEGMENT_RATE_LIMIT_RPS: '1000' },
    { readyTimeoutMs: 60_000 },
  )
  stops.push(() => segment.stop('SIGTERM', 20_000))

  const nonce = randomBytes(16).toString('hex')
  const authorization = `Token token="${nonce}/${createHmac('sha512', SECRET).update(nonce).digest('hex')}"`
  const pids = {
    ingress: ingress.pid,
    'local-kafka': kafka.pid,
    segment: segment.pid,
    simulator: simulators.pid,
    'redis-server': redis.pid,
    'bench (Looker stub)': process.pid,
  }
  const cpuNow = () => Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]))

  async function admin<T>(path: string, method = 'GET'): Promise<T> {
    const res = await request(`${sim}/__admin${path}`, { method })
    return (await res.body.json()) as T
  }

  async function execute(spec: LookSpec, planId: number) {
    const download = looker.serve(spec)
    const startedAt = now()
    const res = await request(`${ingress.url}/actions/segment_identify/execute`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json', 'user-agent': 'LookerOutgoingWebhook/24.0.0' },
      body: JSON.stringify({
        type: 'query',
        scheduled_plan: { scheduled_plan_id: planId, type: 'Look', download_url: download.url },
        data: {},
        form_params: {},
      }),
      headersTimeout: 0,
      bodyTimeout: 0,
    })
    const body = JSON.parse((await res.body.text()).trim()) as { looker: { success: boolean; message: string } }
    if (!body.looker.success) throw new Error(`execute failed: ${body.looker.message}`)
    return { startedAt, answeredAt: now(), writtenAt: download.writtenAt }
  }

  async function waitAccepted(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const { counters } = await admin<{ counters: { acceptedIds: number } }>('/state')
      if (typeof counters.acceptedIds !== 'number') throw new Error('simulator state has no counters.acceptedIds')
      if (counters.acceptedIds >= count) return
      if (Date.now() > deadline) throw new Error(`only ${counters.acceptedIds} of ${count} accepted`)
      await sleep(100)
    }
  }

  // When each record of a send was handed to Kafka: kafkajs stamps CreateTime as the ingress's producer sends
  // the batch, so it splits a row's latency into "ingress" and "Kafka → segment service → simulator". Read with
  // kcat, by key (the userId).
  async function producedAt(prefix: string): Promise<Map<number, number>> {
    const { stdout } = await run(
      'kcat',
      ['-C', '-b', kafka.brokers, '-t', 'lookstream.identify.v1', '-o', 'beginning', '-e', '-q', '-f', '%T %k\\n'],
      { maxBuffer: 256 * 1024 * 1024 },
    )
    const out = new Map<number, number>()
    for (const line of stdout.split('\n')) {
      const space = line.indexOf(' ')
      const key = line.slice(space + 1)
      if (key.startsWith(`${prefix}-`)) out.set(rowIndexOf(prefix, key), Number(line.slice(0, space)))
    }
    return out
  }

  async function acceptedItems(): Promise<{ userId: string; acceptedAt: number }[]> {
    const out: { userId: string; acceptedAt: number }[] = []
    for (let offset = 0; ; offset += 20_000) {
      const page = await admin<{ total: number; items: { acceptedAt: number; item: { userId: string } }[] }>(
        `/accepted?offset=${offset}&limit=20000`,
      )
      for (const a of page.items) out.push({ userId: a.item.userId, acceptedAt: a.acceptedAt })
      if (offset + page.items.length >= page.total || page.items.length === 0) return out
    }
  }

  // 0. warm-up: a small send first, so the figures are those of running services (JIT, connections, group)
  if (WARMUP_ROWS > 0) {
    log(`warm-up: ${WARMUP_ROWS} rows`)
    await admin('/reset', 'POST')
    await execute({ prefix: 'wu', rows: WARMUP_ROWS, ranAt: new Date().toISOString() }, 0)
    await waitAccepted(WARMUP_ROWS, 120_000)
  }

  // 1. throughput
  log(`throughput: ${ROWS} rows, unpaced`)
  await admin('/reset', 'POST')
  const cpu0 = cpuNow()
  const load0 = loadAverage()
  const t = await execute({ prefix: 'tp', rows: ROWS, ranAt: new Date().toISOString() }, 1)
  log(`execute answered after ${Math.round(t.answeredAt - t.startedAt)} ms`)
  await waitAccepted(ROWS, 600_000)
  const cpu1 = cpuNow()
  const items = await acceptedItems()
  if (items.length !== ROWS) throw new Error(`expected ${ROWS} accepted items, read ${items.length}`)
  const firstAccepted = Math.min(...items.map((i) => i.acceptedAt))
  const lastAccepted = Math.max(...items.map((i) => i.acceptedAt))
  const state1 = await admin<{ counters: { requests: number; duplicates: number } }>('/state')
  const throughput = {
    rows: ROWS,
    eventsPerSecond: Math.round(ROWS / ((lastAccepted - t.startedAt) / 1000)),
    executeToLastAcceptedMs: Math.round(lastAccepted - t.startedAt),
    ingressAnsweredMs: Math.round(t.answeredAt - t.startedAt),
    ingressRowsPerSecond: Math.round(ROWS / ((t.answeredAt - t.startedAt) / 1000)),
    firstAcceptedMs: Math.round(firstAccepted - t.startedAt),
    segmentRequests: state1.counters.requests,
    simulatorDuplicates: state1.counters.duplicates,
    cpuSeconds: Object.fromEntries(Object.keys(cpu0).map((k) => [k, +(cpu1[k]! - cpu0[k]!).toFixed(2)])),
    // What the same CPU work would allow on two cores of its own: the send cannot finish before the busiest
    // process has had its CPU time, nor before half the total has run. An estimate, not a measurement.
    cpuBoundEventsPerSecondOnTwoIdleCores: 0,
    loadAverage: `${load0} → ${loadAverage()}`,
  }
  {
    const spent = Object.entries(throughput.cpuSeconds).filter(([name]) => !name.startsWith('bench'))
    const total = spent.reduce((sum, [, cpu]) => sum + cpu, 0)
    const busiest = Math.max(...spent.map(([, cpu]) => cpu))
    throughput.cpuBoundEventsPerSecondOnTwoIdleCores = Math.round(ROWS / Math.max(total / 2, busiest))
  }
  log(JSON.stringify(throughput))

  // 2. latency at a steady rate
  log(`latency: ${PACED_ROWS} rows at ${RATE} rows/s`)
  await admin('/reset', 'POST')
  const cpu2 = cpuNow()
  const load2 = loadAverage()
  const l = await execute({ prefix: 'lt', rows: PACED_ROWS, ranAt: new Date().toISOString(), rowsPerSecond: RATE }, 2)
  await waitAccepted(PACED_ROWS, 300_000)
  const cpu3 = cpuNow()
  const paced = await acceptedItems()
  const produced = await producedAt('lt')
  const latencies = new Float64Array(paced.length)
  const toKafka = new Float64Array(paced.length)
  const fromKafka = new Float64Array(paced.length)
  paced.forEach((a, i) => {
    const index = rowIndexOf('lt', a.userId)
    const written = l.writtenAt[index]!
    const createTime = produced.get(index) ?? Number.NaN
    latencies[i] = a.acceptedAt - written
    toKafka[i] = createTime - written
    fromKafka[i] = a.acceptedAt - createTime
  })
  if (args.dump !== undefined) {
    // One line per paced row: index, stub write, Kafka CreateTime, simulator acceptance (ms since the epoch).
    const lines = paced.map((a) => {
      const index = rowIndexOf('lt', a.userId)
      return `${index},${l.writtenAt[index]!.toFixed(2)},${produced.get(index) ?? ''},${a.acceptedAt.toFixed(2)}`
    })
    writeFileSync(args.dump, `row,written,create_time,accepted\n${lines.join('\n')}\n`)
  }
  for (const series of [latencies, toKafka, fromKafka]) series.sort()
  const split = (series: Float64Array) => ({
    p50Ms: +percentile(series, 50).toFixed(1),
    p99Ms: +percentile(series, 99).toFixed(1),
  })
  const state2 = await admin<{ counters: { requests: number } }>('/state')
  const streamSeconds = (l.answeredAt - l.startedAt) / 1000
  const latency = {
    rows: PACED_ROWS,
    rowsPerSecondOffered: RATE,
    rowsPerSecondStreamed: Math.round(PACED_ROWS / streamSeconds),
    p50Ms: +percentile(latencies, 50).toFixed(1),
    p90Ms: +percentile(latencies, 90).toFixed(1),
    p99Ms: +percentile(latencies, 99).toFixed(1),
    maxMs: +latencies[latencies.length - 1]!.toFixed(1),
    rowsFoundOnKafka: produced.size,
    stubWriteToKafkaCreateTime: split(toKafka),
    kafkaCreateTimeToAccepted: split(fromKafka),
    segmentRequests: state2.counters.requests,
    eventsPerRequest: Math.round(PACED_ROWS / state2.counters.requests),
    cpuPercentOfOneCore: Object.fromEntries(
      Object.keys(cpu2).map((k) => [k, Math.round(((cpu3[k]! - cpu2[k]!) / streamSeconds) * 100)]),
    ),
    loadAverage: `${load2} → ${loadAverage()}`,
  }
  log(JSON.stringify(latency))

  process.stdout.write(
    [
      '| measure | value |',
      '|---|---:|',
      `| throughput: ${ROWS.toLocaleString('en')}-row send, execute → last event accepted | ${throughput.eventsPerSecond.toLocaleString('en')} events/s (${(throughput.executeToLastAcceptedMs / 1000).toFixed(1)} s) |`,
      `| of which ingress (execute answered, all rows acked by Kafka) | ${(throughput.ingressAnsweredMs / 1000).toFixed(1)} s (${throughput.ingressRowsPerSecond.toLocaleString('en')} rows/s) |`,
      `| Segment requests for the send | ${throughput.segmentRequests} |`,
      `| CPU-time bound on 2 idle cores (estimate from CPU seconds per process) | ${throughput.cpuBoundEventsPerSecondOnTwoIdleCores.toLocaleString('en')} events/s |`,
      `| latency at ${RATE} rows/s (${PACED_ROWS.toLocaleString('en')} rows): p50 | ${latency.p50Ms} ms |`,
      `| latency p90 | ${latency.p90Ms} ms |`,
      `| latency p99 | ${latency.p99Ms} ms |`,
      `| latency max | ${latency.maxMs} ms |`,
      `| of which stub write → Kafka CreateTime (ingress) p50 / p99 | ${latency.stubWriteToKafkaCreateTime.p50Ms} / ${latency.stubWriteToKafkaCreateTime.p99Ms} ms |`,
      `| of which Kafka CreateTime → accepted (Kafka, segment service, HTTP) p50 / p99 | ${latency.kafkaCreateTimeToAccepted.p50Ms} / ${latency.kafkaCreateTimeToAccepted.p99Ms} ms |`,
      '',
      '```json',
      JSON.stringify({ throughput, latency }, null, 2),
      '```',
      '',
    ].join('\n'),
  )
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  process.exitCode = 1
} finally {
  await stopAll()
}
