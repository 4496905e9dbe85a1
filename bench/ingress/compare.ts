// Two versions of the ingress side by side in one run: the working copy and a git ref (default `main`), each
// compiled and started as its `pnpm start` does, each sending the same Look from a local Looker stub into the same
// local-kafka, in alternating fresh processes (ABAB... with the order flipped every round, so machine drift falls on
// both). Per run: rows/s from the execute request to the final {"looker": …} body, peak RSS (VmHWM), CPU seconds.
//   node --conditions=@lookstream/source bench/ingress/compare.ts [--baseline main] [--rows 1000000] [--rounds 3]
//        [--keep]
import { createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { RegistryHeartbeat } from '@lookstream/events'
import { startLocalKafka, type LocalKafka } from '@lookstream/local-kafka'
import {
  buildProject,
  readStartCommand,
  spawnService,
  startRedis,
  type RedisProcess,
  type SpawnedService,
} from '@lookstream/testing'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { buildBaseline, type Baseline } from './baseline.ts'
import { FIELDS, writeLook } from './look-generator.ts'
import { startLookerStub, type LookerStub } from './looker-stub.ts'
import { cpuSeconds, loadAverage, peakRssBytes } from './proc-stats.ts'

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string', default: 'main' },
    rows: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
  },
})
const ROWS = Number(args.rows)
const ROUNDS = Number(args.rounds)
const INGRESS_DIR = new URL('../../services/ingress/', import.meta.url).pathname
const START = readStartCommand(INGRESS_DIR)
const SECRET = randomBytes(32).toString('hex')

const log = (text: string) =>
  process.stderr.write(`[bench ingress compare ${new Date().toISOString().slice(11, 19)}] ${text}\n`)
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function token(): string {
  const nonce = randomBytes(16).toString('hex')
  return `${nonce}/${createHmac('sha512', SECRET).update(nonce).digest('hex')}`
}

interface Run {
  variant: string
  round: number
  ms: number
  peakRss: number
  cpu: number
  load: string
}

const tmp = mkdtempSync(join(tmpdir(), 'bench-ingress-compare-'))
let broker: LocalKafka | undefined
let redis: RedisProcess | undefined
let stub: LookerStub | undefined
let ingress: SpawnedService | undefined
let baseline: Baseline | undefined
let planId = Date.now()

async function runOnce(entry: string, file: string): Promise<Omit<Run, 'variant' | 'round'>> {
  ingress = await spawnService(
    entry,
    {
      ACTION_HUB_SECRET: SECRET,
      HOST: '127.0.0.1',
      PORT: '0',
      KAFKA_BROKERS: broker!.brokers,
      REDIS_URL: redis!.url,
      LOOKER_HOSTS: stub!.origin,
      LOG_LEVEL: 'info',
      ...START.env,
    },
    { readyTimeoutMs: 60_000, nodeArgs: START.nodeArgs, compiled: true },
  )
  try {
    const pid = ingress.pid
    const load = loadAverage()
    const cpu0 = cpuSeconds(pid)
    const started = performance.now()
    const response = await request(`${ingress.url}/actions/segment_identify/execute`, {
      method: 'POST',
      headers: {
        authorization: `Token token="${token()}"`,
        'user-agent': 'LookerOutgoingWebhook/7.0.0',
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        type: 'query',
        scheduled_plan: {
          scheduled_plan_id: ++planId,
          url: 'https://looker.example.com/looks/42',
          query: { fields: [...FIELDS.dimensions, ...FIELDS.measures].map((f) => f.name) },
          download_url: stub!.offer(file),
        },
        data: {},
        form_params: { connection: 'default' },
      }),
      headersTimeout: 0,
      bodyTimeout: 0,
    })
    const text = await response.body.text()
    const ms = performance.now() - started
    const cpu = cpuSeconds(pid) - cpu0
    const peakRss = peakRssBytes(pid)
    const answer = JSON.parse(text) as { looker: { success: boolean; rows?: { accepted: number } } }
    if (response.statusCode !== 200 || !answer.looker.success || answer.looker.rows?.accepted !== ROWS) {
      throw new Error(`the send did not succeed (HTTP ${response.statusCode}): ${text.trim().slice(0, 2000)}`)
    }
    return { ms, peakRss, cpu, load }
  } finally {
    await ingress.stop('SIGTERM', 30_000)
    ingress = undefined
  }
}

try {
  log(`compiling the working copy and ${args.baseline}`)
  buildProject(INGRESS_DIR)
  baseline = buildBaseline(args.baseline)
  const variants: [string, string][] = [
    [`${args.baseline} (${baseline.commit.slice(0, 9)})`, baseline.entry],
    ['working copy', START.entry],
  ]
  const file = join(tmp, `look-${ROWS}.json`)
  const bytes = await writeLook(file, ROWS)
  log(`Look written: ${fmt(ROWS)} rows (${mib(bytes)} MiB)`)
  broker = await startLocalKafka({ port: 0, dataDir: join(tmp, 'kafka'), logLevel: 'warn' })
  redis = await startRedis()
  stub = await startLookerStub()
  const client = new Redis(redis.url)
  const entry = { destination: 'segment', instance: 'bench', version: 'bench', connections: ['default'] }
  await new RegistryHeartbeat(client, { ...entry, startedAt: new Date().toISOString() }, 3_600_000).beat()
  client.disconnect()

  const runs: Run[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? variants : [...variants].reverse()
    for (const [variant, entryPoint] of order) {
      log(`round ${round}: ${variant}`)
      const run = await runOnce(entryPoint, file)
      runs.push({ variant, round, ...run })
      log(`  ${fmt((ROWS * 1000) / run.ms)} rows/s, peak RSS ${mib(run.peakRss)} MiB`)
    }
  }

  console.log(`Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`)
  console.log(`Payload: ${fmt(ROWS)} rows, ${mib(bytes)} MiB json_detail_lite_stream; action segment_identify`)
  console.log(`Ingress: compiled (dist/), Node options ${START.nodeArgs.join(' ')}`)
  console.log('')
  console.log('| ingress | round | time | rows/s | peak RSS (VmHWM) | CPU s | load avg at start |')
  console.log('|---|---:|---:|---:|---:|---:|---|')
  for (const run of runs) {
    console.log(
      `| ${run.variant} | ${run.round} | ${(run.ms / 1000).toFixed(1)} s | ${fmt((ROWS * 1000) / run.ms)} | ${mib(run.peakRss)} MiB | ${run.cpu.toFixed(1)} | ${run.load} |`,
    )
  }
  console.log('')
  console.log('| ingress | median rows/s | median peak RSS | median CPU s |')
  console.log('|---|---:|---:|---:|')
  const summary: Record<string, { rowsPerSecond: number; peakRss: number; cpu: number }> = {}
  for (const [variant] of variants) {
    const own = runs.filter((run) => run.variant === variant)
    const rowsPerSecond = median(own.map((run) => (ROWS * 1000) / run.ms))
    const peakRss = median(own.map((run) => run.peakRss))
    const cpu = median(own.map((run) => run.cpu))
    summary[variant] = { rowsPerSecond, peakRss, cpu }
    console.log(`| ${variant} | ${fmt(rowsPerSecond)} | ${mib(peakRss)} MiB | ${cpu.toFixed(1)} |`)
  }
  const [before, after] = variants.map(([variant]) => summary[variant]!)
  console.log('')
  console.log(
    `working copy vs ${args.baseline}: rate ${((after!.rowsPerSecond / before!.rowsPerSecond - 1) * 100).toFixed(1)}%, ` +
      `peak RSS ${((after!.peakRss - before!.peakRss) / 1024 / 1024).toFixed(1)} MiB, CPU ${((after!.cpu / before!.cpu - 1) * 100).toFixed(1)}%`,
  )
  console.log(`\n${JSON.stringify({ rows: ROWS, baseline: baseline.commit, runs, summary })}`)
} finally {
  await ingress?.stop('SIGKILL', 5_000)
  await stub?.close()
  await redis?.stop()
  await broker?.stop()
  if (!args.keep) baseline?.remove()
  if (args.keep) log(`kept ${tmp}`)
  else rmSync(tmp, { recursive: true, force: true })
}
