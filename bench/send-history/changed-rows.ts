// "Changed rows only": Redis bytes per remembered row, and the ingress's rate, peak RSS and CPU with the option off
// and on, in one run: each send goes to a fresh ingress process run as its `pnpm start` runs it (compiled, with its
// Node flags and environment), so its peak RSS (VmHWM) is that send's; local-kafka and redis-server.
//   node --conditions=@lookstream/source bench/send-history/changed-rows.ts [--rows 1000000] [--repeat 2]
//     [--baseline <git ref>]   also run every scenario on that version of the ingress (bench/ingress/baseline.ts)
// Scenarios, each a send of the same generated Look (bench/ingress/look-generator.ts, ~330 B a row):
//   off           lookstream_rows=all: every row mapped and produced (today's behaviour)
//   on, first run lookstream_rows=changed on a new schedule: every row produced and remembered
//   on, unchanged the same Look again: every row mapped, fingerprinted and skipped
//   on, 1% changed every 100th row changed: 1% produced, 99% skipped
// Prints a Markdown table and a JSON summary (bench/README.md, send history).
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
import { createHmac, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { buildBaseline, type Baseline } from '../ingress/baseline.ts'
import { FIELDS, RAN_AT, rowJson } from '../ingress/look-generator.ts'
import { startLookerStub, type LookerStub } from '../ingress/looker-stub.ts'
import { cpuSeconds, loadAverage, peakRssBytes } from '../ingress/proc-stats.ts'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    repeat: { type: 'string', default: '2' },
    baseline: { type: 'string' },
  },
})
const ROWS = Number(args.rows)
const REPEAT = Number(args.repeat)
const SECRET = randomBytes(32).toString('hex')
const HISTORY_SECRET = randomBytes(16).toString('hex')
const INGRESS_DIR = new URL('../../services/ingress/', import.meta.url).pathname
const START = readStartCommand(INGRESS_DIR)
const log = (text: string) =>
  process.stderr.write(`[bench changed-rows ${new Date().toISOString().slice(11, 19)}] ${text}\n`)
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)

async function writeLook(path: string, changedEvery: number | undefined): Promise<void> {
  const out = createWriteStream(path)
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain')
  }
  await write(`{"ran_at":${JSON.stringify(RAN_AT)},"fields":${JSON.stringify(FIELDS)},"data":[\n`)
  for (let i = 0; i < ROWS; i++) {
    let row = rowJson(i)
    if (changedEvery !== undefined && i % changedEvery === 0)
      row = row.replace('"users.plan":{"value":"', '"users.plan":{"value":"changed-')
    await write(row + (i === ROWS - 1 ? '\n' : ',\n'))
  }
  await write(']}\n')
  out.end()
  await once(out, 'finish')
}

function token(): string {
  const nonce = randomBytes(16).toString('hex')
  return `${nonce}/${createHmac('sha512', SECRET).update(nonce).digest('hex')}`
}

const tmp = mkdtempSync(join(tmpdir(), 'bench-changed-rows-'))
let broker: LocalKafka | undefined
let redisProcess: RedisProcess | undefined
let stub: LookerStub | undefined
let redis: Redis | undefined
let ingress: SpawnedService | undefined
let baseline: Baseline | undefined

interface Result {
  variant: string
  scenario: string
  ms: number
  rowsPerSecond: number
  accepted: number
  skipped: number | undefined
  /** VmHWM of the ingress process that ran only this send. */
  peakRss: number
  cpu: number
  load: string
}

async function send(
  variant: string,
  entry: string,
  scenario: string,
  file: string,
  planId: number,
  rows: 'all' | 'changed',
): Promise<Result> {
  ingress = await spawnService(
    entry,
    {
      ACTION_HUB_SECRET: SECRET,
      SEND_HISTORY_SECRET: HISTORY_SECRET,
      HOST: '127.0.0.1',
      PORT: '0',
      KAFKA_BROKERS: broker!.brokers,
      REDIS_URL: redisProcess!.url,
      LOOKER_HOSTS: stub!.origin,
      LOG_LEVEL: 'info',
      CHANGED_ROWS_MAX_ROWS: String(Math.max(ROWS, 1)),
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
      headers: { authorization: `Token token="${token()}"`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'query',
        scheduled_plan: { scheduled_plan_id: planId, download_url: stub!.offer(file) },
        form_params: { lookstream_rows: rows },
      }),
      headersTimeout: 0,
      bodyTimeout: 0,
    })
    const text = await response.body.text()
    const ms = performance.now() - started
    const cpu = cpuSeconds(pid) - cpu0
    const peakRss = peakRssBytes(pid)
    const answer = JSON.parse(text) as {
      looker: { success: boolean; message: string; rows: { accepted: number; skipped_unchanged?: number } }
    }
    if (!answer.looker.success) throw new Error(`${scenario}: ${answer.looker.message.slice(0, 500)}`)
    const result = {
      variant,
      scenario,
      ms,
      rowsPerSecond: Math.round(ROWS / (ms / 1000)),
      accepted: answer.looker.rows.accepted,
      skipped: answer.looker.rows.skipped_unchanged,
      peakRss,
      cpu,
      load,
    }
    log(JSON.stringify(result))
    return result
  } finally {
    await ingress.stop('SIGTERM', 30_000)
    ingress = undefined
  }
}

async function rememberedBytes(planId: number): Promise<{ keys: number; bytes: number; rows: number }> {
  const tag = `segment_identify|default|${planId}`
  const meta = await redis!.hgetall(`lookstream:changed:{${tag}}:meta`)
  let bytes = Number(await redis!.memory('USAGE', `lookstream:changed:{${tag}}:meta`))
  const chunks = Number(meta.chunks)
  for (let i = 0; i < chunks; i++)
    bytes += Number(await redis!.memory('USAGE', `lookstream:changed:{${tag}}:g${meta.gen}:${i}`))
  return { keys: chunks + 1, bytes, rows: Number(meta.rows) }
}

try {
  log('building the ingress (tsc -b services/ingress)')
  buildProject(INGRESS_DIR)
  const variants: [string, string][] = [['working copy', START.entry]]
  if (args.baseline !== undefined) {
    baseline = buildBaseline(args.baseline)
    variants.unshift([`${args.baseline} (${baseline.commit.slice(0, 9)})`, baseline.entry])
  }
  broker = await startLocalKafka({ dataDir: join(tmp, 'kafka'), logLevel: 'error' })
  redisProcess = await startRedis()
  stub = await startLookerStub()
  redis = new Redis(redisProcess.url)
  const registration = { destination: 'segment', instance: 'bench', version: 'bench', connections: ['default'] }
  await new RegistryHeartbeat(redis, { ...registration, startedAt: new Date().toISOString() }, 3_600_000).beat()
  const base = join(tmp, 'look.json')
  const changed = join(tmp, 'look-1pct.json')
  await writeLook(base, undefined)
  await writeLook(changed, 100)
  log(`${ROWS} rows written`)
  const results: Result[] = []
  let plan = Date.now()
  let memory: { keys: number; bytes: number; rows: number } | undefined
  for (let r = 0; r < REPEAT; r++) {
    // Alternating the versions' order round by round, so neither always runs on the warmer (or busier) machine.
    for (const [variant, entry] of r % 2 === 0 ? variants : [...variants].reverse()) {
      results.push(await send(variant, entry, 'off', base, ++plan, 'all'))
      const on = ++plan
      results.push(await send(variant, entry, 'on, first run', base, on, 'changed'))
      memory = await rememberedBytes(on)
      results.push(await send(variant, entry, 'on, unchanged', base, on, 'changed'))
      results.push(await send(variant, entry, 'on, 1% changed', changed, on, 'changed'))
    }
  }
  console.log(`Ingress: compiled (dist/), Node options ${START.nodeArgs.join(' ')}; one process per send`)
  console.log(
    `| ingress | scenario | rows | ms | rows/s | produced | skipped | peak RSS (VmHWM) | CPU s | load avg at start |`,
  )
  console.log(`| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |`)
  for (const r of results) {
    console.log(
      `| ${r.variant} | ${r.scenario} | ${ROWS} | ${Math.round(r.ms)} | ${r.rowsPerSecond} | ${r.accepted} | ${r.skipped ?? '—'} | ${mib(r.peakRss)} MiB | ${r.cpu.toFixed(1)} | ${r.load} |`,
    )
  }
  console.log(
    `\nremembered: ${memory!.rows} rows in ${memory!.keys} keys, ${memory!.bytes} bytes (MEMORY USAGE): ${(memory!.bytes / memory!.rows).toFixed(2)} bytes per row`,
  )
  console.log(JSON.stringify({ rows: ROWS, results, memory }))
} finally {
  await ingress?.stop('SIGTERM', 30_000)
  redis?.disconnect()
  await stub?.close()
  await redisProcess?.stop()
  await broker?.stop()
  baseline?.remove()
  rmSync(tmp, { recursive: true, force: true })
}
