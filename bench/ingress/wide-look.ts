// Event-loop stalls on wide Looks: while the ingress runs one send, the bench asks GET /status back to back and
// records the slowest answer (an answer cannot come while the ingress's event loop is blocked). Cases: 250,000
// dimensions (7.6 MB of `fields`) with 200 rows; 10,000 dimensions (MAX_FIELDS) with 200 rows holding every
// cell; 10,000 dimensions with 20,000 rows holding one cell each. Optionally the same for a git ref. Before each
// send the bench probes /status for 3 s with nothing running: on a loaded machine that is the floor it can show.
//   node --conditions=@lookstream/source bench/ingress/wide-look.ts [--baseline main]
import { createHmac, randomBytes } from 'node:crypto'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { once } from 'node:events'
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
import { startLookerStub, type LookerStub } from './looker-stub.ts'
import { loadAverage } from './proc-stats.ts'

const { values: args } = parseArgs({ options: { baseline: { type: 'string' } } })
const INGRESS_DIR = new URL('../../services/ingress/', import.meta.url).pathname
const START = readStartCommand(INGRESS_DIR)
const SECRET = randomBytes(32).toString('hex')
const log = (text: string) =>
  process.stderr.write(`[bench wide look ${new Date().toISOString().slice(11, 19)}] ${text}\n`)

function token(): string {
  const nonce = randomBytes(16).toString('hex')
  return `${nonce}/${createHmac('sha512', SECRET).update(nonce).digest('hex')}`
}

interface Case {
  name: string
  fields: number
  rows: number
  /** Cells per row (the first is always the user_id column). */
  cells: number
}

const CASES: Case[] = [
  { name: '250,000 dimensions, 200 rows', fields: 250_000, rows: 200, cells: 2 },
  { name: '10,000 dimensions, 200 full rows', fields: 10_000, rows: 200, cells: 10_000 },
  { name: '10,000 dimensions, 20,000 rows of one cell', fields: 10_000, rows: 20_000, cells: 1 },
]

async function writeCase(path: string, c: Case): Promise<void> {
  const out = createWriteStream(path)
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain')
  }
  await write('{"fields":{"dimensions":[')
  for (let i = 0; i < c.fields; i++) {
    await write(`${i === 0 ? '' : ','}{"name":"v.f${i}","tags":[${i === 0 ? '"user_id"' : ''}]}`)
  }
  await write(']},"data":[')
  for (let r = 0; r < c.rows; r++) {
    let row = `${r === 0 ? '' : ','}{"v.f0":{"value":"user-${r}"}`
    for (let i = 1; i < c.cells; i++) row += `,"v.f${i}":{"value":${i}}`
    await write(`${row}}`)
  }
  out.end(']}')
  await once(out, 'finish')
}

const tmp = mkdtempSync(join(tmpdir(), 'bench-wide-look-'))
let broker: LocalKafka | undefined
let redis: RedisProcess | undefined
let stub: LookerStub | undefined
let ingress: SpawnedService | undefined
let baseline: Baseline | undefined

interface Result {
  variant: string
  name: string
  seconds: number
  maxStatusMs: number
  /** The slowest /status answer over 3 s with no send running: what the machine's load alone costs. */
  idleMaxStatusMs: number
  probes: number
  message: string
  load: string
}

async function measure(variant: string, entry: string, c: Case, file: string): Promise<Result> {
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
    const url = ingress.url
    const probe = async () => {
      const started = performance.now()
      const response = await request(`${url}/status`)
      await response.body.dump()
      return performance.now() - started
    }
    let idleMaxStatusMs = 0
    for (const idleUntil = performance.now() + 3000; performance.now() < idleUntil;) {
      idleMaxStatusMs = Math.max(idleMaxStatusMs, await probe())
    }
    let sending = true
    let maxStatusMs = 0
    let probes = 0
    const prober = (async () => {
      while (sending) {
        maxStatusMs = Math.max(maxStatusMs, await probe())
        probes++
      }
    })()
    const load = loadAverage()
    const started = performance.now()
    const response = await request(`${url}/actions/segment_identify/execute`, {
      method: 'POST',
      headers: { authorization: `Token token="${token()}"`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'query',
        scheduled_plan: { scheduled_plan_id: Date.now(), download_url: stub!.offer(file) },
        form_params: { connection: 'default' },
      }),
      headersTimeout: 0,
      bodyTimeout: 0,
    })
    const text = await response.body.text()
    const seconds = (performance.now() - started) / 1000
    sending = false
    await prober
    const message = (JSON.parse(text) as { looker: { message: string } }).looker.message
    return { variant, name: c.name, seconds, maxStatusMs, idleMaxStatusMs, probes, message, load }
  } finally {
    await ingress.stop('SIGTERM', 30_000)
    ingress = undefined
  }
}

try {
  buildProject(INGRESS_DIR)
  if (args.baseline !== undefined) baseline = buildBaseline(args.baseline)
  const files = CASES.map((_, i) => join(tmp, `case-${i}.json`))
  for (const [i, c] of CASES.entries()) await writeCase(files[i]!, c)
  broker = await startLocalKafka({ port: 0, dataDir: join(tmp, 'kafka'), logLevel: 'warn' })
  redis = await startRedis()
  stub = await startLookerStub()
  const client = new Redis(redis.url)
  const entry = { destination: 'segment', instance: 'bench', version: 'bench', connections: ['default'] }
  await new RegistryHeartbeat(client, { ...entry, startedAt: new Date().toISOString() }, 3_600_000).beat()
  client.disconnect()
  const variants: [string, string][] = []
  if (baseline) variants.push([`${baseline.ref} (${baseline.commit.slice(0, 9)})`, baseline.entry])
  variants.push(['working copy', START.entry])
  const results: Result[] = []
  for (const [i, c] of CASES.entries()) {
    for (const [variant, entryPoint] of variants) {
      log(`${variant}: ${c.name}`)
      const result = await measure(variant, entryPoint, c, files[i]!)
      log(`  ${result.seconds.toFixed(1)} s, slowest /status ${result.maxStatusMs.toFixed(0)} ms`)
      results.push(result)
    }
  }
  console.log(`Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`)
  console.log('')
  console.log(
    '| ingress | Look | send time | slowest /status during the send | slowest /status, 3 s idle before | /status answers | answer | load avg at start |',
  )
  console.log('|---|---|---:|---:|---:|---:|---|---|')
  for (const r of results) {
    console.log(
      `| ${r.variant} | ${r.name} | ${r.seconds.toFixed(1)} s | ${r.maxStatusMs.toFixed(0)} ms | ${r.idleMaxStatusMs.toFixed(0)} ms | ${r.probes} | ${r.message.slice(0, 160)} | ${r.load} |`,
    )
  }
  console.log(`\n${JSON.stringify(results)}`)
} finally {
  await ingress?.stop('SIGKILL', 5_000)
  await stub?.close()
  await redis?.stop()
  await broker?.stop()
  baseline?.remove()
  rmSync(tmp, { recursive: true, force: true })
}
