// Memory of the ingress under concurrent pushed attachments: N executes at once, each carrying a ~60 MB base64
// attachment (the Look inline, as Looker pushes it when no download_url is offered), with MAX_CONCURRENT_SENDS=N
// so that every one is taken. Peak RSS (VmHWM) of the ingress process, compiled and started as `pnpm start` does;
// optionally the same for a git ref (--baseline main) in the same run.
//   node --conditions=@lookstream/source bench/ingress/push-memory.ts [--pushes 16] [--mb 60] [--baseline main]
import { createHmac, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs'
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
import { writeLook } from './look-generator.ts'
import { loadAverage, peakRssBytes, rssBytes } from './proc-stats.ts'

const { values: args } = parseArgs({
  options: {
    pushes: { type: 'string', default: '16' },
    mb: { type: 'string', default: '60' },
    baseline: { type: 'string' },
  },
})
const PUSHES = Number(args.pushes)
const BODY_MB = Number(args.mb)
const INGRESS_DIR = new URL('../../services/ingress/', import.meta.url).pathname
const START = readStartCommand(INGRESS_DIR)
const SECRET = randomBytes(32).toString('hex')
// writeLook rows are ~308 bytes of JSON (with their separators); base64 adds a third.
const ROWS = Math.floor((BODY_MB * 1_000_000 * 3) / 4 / 308)

const log = (text: string) =>
  process.stderr.write(`[bench push memory ${new Date().toISOString().slice(11, 19)}] ${text}\n`)
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)

function token(): string {
  const nonce = randomBytes(16).toString('hex')
  return `${nonce}/${createHmac('sha512', SECRET).update(nonce).digest('hex')}`
}

/** Writes the execute body: the Look base64-encoded as attachment.data, streamed (never held whole). */
async function writeBody(look: string, path: string): Promise<number> {
  const out = createWriteStream(path)
  out.write(`{"type":"query","scheduled_plan":{"scheduled_plan_id":1,"url":"https://looker.example.com/looks/42"},`)
  out.write(`"attachment":{"mimetype":"application/json;base64","extension":"json","data":"`)
  let carry = Buffer.alloc(0)
  for await (const chunk of createReadStream(look, { highWaterMark: 3 * 64 * 1024 }) as AsyncIterable<Buffer>) {
    const bytes = Buffer.concat([carry, chunk])
    const whole = bytes.length - (bytes.length % 3)
    if (!out.write(bytes.subarray(0, whole).toString('base64'))) await once(out, 'drain')
    carry = bytes.subarray(whole)
  }
  out.write(carry.toString('base64'))
  out.end(`"},"data":{},"form_params":{"connection":"default"}}`)
  await once(out, 'finish')
  return statSync(path).size
}

interface Result {
  variant: string
  peakRss: number
  idleRss: number
  seconds: number
  succeeded: number
  refused: number
  load: string
}

const tmp = mkdtempSync(join(tmpdir(), 'bench-push-memory-'))
let broker: LocalKafka | undefined
let redis: RedisProcess | undefined
let ingress: SpawnedService | undefined
let baseline: Baseline | undefined

async function measure(variant: string, entry: string, body: string, bodyBytes: number): Promise<Result> {
  ingress = await spawnService(
    entry,
    {
      ACTION_HUB_SECRET: SECRET,
      HOST: '127.0.0.1',
      PORT: '0',
      KAFKA_BROKERS: broker!.brokers,
      REDIS_URL: redis!.url,
      LOOKER_HOSTS: 'https://looker.example.com',
      LOG_LEVEL: 'info',
      MAX_CONCURRENT_SENDS: String(PUSHES),
      MAX_BODY_BYTES: String(Math.max(bodyBytes + 1024, 64 * 1024 * 1024)),
      ...START.env,
    },
    { readyTimeoutMs: 60_000, nodeArgs: START.nodeArgs, compiled: true },
  )
  try {
    const pid = ingress.pid
    const idleRss = rssBytes(pid)
    const load = loadAverage()
    const started = performance.now()
    const answers = await Promise.all(
      Array.from({ length: PUSHES }, async () => {
        const response = await request(`${ingress!.url}/actions/segment_identify/execute`, {
          method: 'POST',
          headers: {
            authorization: `Token token="${token()}"`,
            'content-type': 'application/json',
            'content-length': String(bodyBytes),
          },
          body: createReadStream(body),
          headersTimeout: 0,
          bodyTimeout: 0,
        })
        const text = await response.body.text()
        const looker = (JSON.parse(text) as { looker: { success: boolean; rows?: { accepted: number } } }).looker
        return { status: response.statusCode, looker, text }
      }),
    )
    const seconds = (performance.now() - started) / 1000
    const peakRss = peakRssBytes(pid)
    const succeeded = answers.filter((a) => a.status === 200 && a.looker.success && a.looker.rows?.accepted === ROWS)
    const refused = answers.filter((a) => a.status === 503).length
    if (succeeded.length + refused !== PUSHES) {
      const other = answers.find((a) => !(a.status === 200 && a.looker.success) && a.status !== 503)
      throw new Error(`${variant}: a push neither succeeded nor was refused: ${other?.text.slice(0, 500)}`)
    }
    return { variant, peakRss, idleRss, seconds, succeeded: succeeded.length, refused, load }
  } finally {
    await ingress.stop('SIGTERM', 30_000)
    ingress = undefined
  }
}

try {
  log('compiling the ingress')
  buildProject(INGRESS_DIR)
  if (args.baseline !== undefined) baseline = buildBaseline(args.baseline)
  const look = join(tmp, 'look.json')
  await writeLook(look, ROWS)
  const body = join(tmp, 'body.json')
  const bodyBytes = await writeBody(look, body)
  rmSync(look)
  log(`execute body: ${ROWS} rows, ${(bodyBytes / 1e6).toFixed(1)} MB (base64 attachment)`)
  broker = await startLocalKafka({ port: 0, dataDir: join(tmp, 'kafka'), logLevel: 'warn' })
  redis = await startRedis()
  const client = new Redis(redis.url)
  const entry = { destination: 'segment', instance: 'bench', version: 'bench', connections: ['default'] }
  await new RegistryHeartbeat(client, { ...entry, startedAt: new Date().toISOString() }, 3_600_000).beat()
  client.disconnect()

  const variants: [string, string][] = []
  if (baseline) variants.push([`${baseline.ref} (${baseline.commit.slice(0, 9)})`, baseline.entry])
  variants.push(['working copy', START.entry])
  const results: Result[] = []
  for (const [variant, entryPoint] of variants) {
    log(`${variant}: ${PUSHES} concurrent pushes`)
    const result = await measure(variant, entryPoint, body, bodyBytes)
    log(`  peak RSS ${mib(result.peakRss)} MiB, ${result.seconds.toFixed(1)} s`)
    results.push(result)
  }
  console.log(`Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`)
  console.log(
    `${PUSHES} concurrent executes, each ${(bodyBytes / 1e6).toFixed(1)} MB (${ROWS.toLocaleString('en-US')} rows, base64 attachment), MAX_CONCURRENT_SENDS=${PUSHES}`,
  )
  console.log('')
  console.log('| ingress | RSS when ready | peak RSS (VmHWM) | sends succeeded / refused | time | load avg at start |')
  console.log('|---|---:|---:|---:|---:|---|')
  for (const r of results) {
    console.log(
      `| ${r.variant} | ${mib(r.idleRss)} MiB | ${mib(r.peakRss)} MiB | ${r.succeeded} / ${r.refused} | ${r.seconds.toFixed(1)} s | ${r.load} |`,
    )
  }
  console.log(`\n${JSON.stringify({ pushes: PUSHES, bodyBytes, rows: ROWS, results })}`)
} finally {
  await ingress?.stop('SIGKILL', 5_000)
  await redis?.stop()
  await broker?.stop()
  baseline?.remove()
  rmSync(tmp, { recursive: true, force: true })
}
