// Ingress throughput and memory: a json_detail_lite_stream Look streamed from a local Looker stub through the
// ingress (its own process) into local-kafka (its own process), beside the ceilings measured in the same run: a
// bare kafkajs producer (with lookstream's kafkajs patch, and the published kafkajs) and JSON.parse.
//   node --conditions=@lookstream/source bench/ingress/run.ts [--rows 1000000] [--small-rows 100000]
//        [--batch 1000,5000] [--cpu-prof <dir>] [--ingress-node-options=<flags>]
//        [--ingress-only] [--ingress-env NAME=VALUE] [--no-stock] [--keep] [--compression none,gzip,zstd]
// Prints a Markdown table and a JSON summary. See bench/README.md (ingress section) for what each figure means.
import { Redis } from 'ioredis'
import { RegistryHeartbeat } from '@lookstream/events'
import { spawn } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { appendFileSync, createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { request } from 'undici'
import { startLocalKafka, type LocalKafka } from '@lookstream/local-kafka'
import {
  buildProject,
  readStartCommand,
  spawnService,
  startRedis,
  type RedisProcess,
  type SpawnedService,
} from '@lookstream/testing'
import { parseRows } from './json-parse-ceiling.ts'
import { FIELDS, writeLook } from './look-generator.ts'
import { startLookerStub, type LookerStub } from './looker-stub.ts'
import { encodeFrame } from './message-frames.ts'
import { cpuSeconds, loadAverage, peakRssBytes, rssBytes } from './proc-stats.ts'
import { stockKafkajs } from './stock-kafkajs.ts'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    'small-rows': { type: 'string' },
    batch: { type: 'string', default: '1000,5000' },
    'cpu-prof': { type: 'string' },
    'ingress-node-options': { type: 'string' },
    'ingress-only': { type: 'boolean', default: false },
    // Extra ingress environment, e.g. --ingress-env PRODUCER_MAX_IN_FLIGHT_MESSAGES=8000 (repeatable).
    'ingress-env': { type: 'string', multiple: true, default: [] },
    // For experiments on a modified copy of the ingress (its node_modules must resolve the workspace packages).
    'ingress-main': { type: 'string' },
    // Run the ingress's TypeScript sources (type stripping) instead of its compiled dist/ build.
    source: { type: 'boolean', default: false },
    // Append the ingress's output (its log, or --trace-gc lines) to this file after each run.
    'ingress-output': { type: 'string' },
    keep: { type: 'boolean', default: false },
    // Skip the second bare-producer ceiling, the published kafkajs without lookstream's patch.
    'no-stock': { type: 'boolean', default: false },
    // Only compare PRODUCER_COMPRESSION settings: one send of --rows per setting, side by side, with the bytes
    // the broker stored for each (record batches are stored as produced: the bytes on the wire).
    compression: { type: 'string' },
  },
})
const ROWS = Number(args.rows)
const SMALL_ROWS = Number(args['small-rows'] ?? Math.max(1, Math.round(ROWS / 10)))
const BATCHES = args.batch.split(',').map(Number)
const CPU_PROF_DIR = args['cpu-prof']
// The ingress runs as its `pnpm start` does (compiled, with its Node flags and environment), so the bench
// measures the process as it is deployed; --source runs the TypeScript sources with the same flags instead.
const INGRESS_DIR = new URL('../../services/ingress/', import.meta.url).pathname
const START = readStartCommand(INGRESS_DIR)
const INGRESS_NODE_OPTIONS = [
  ...START.nodeArgs,
  ...(CPU_PROF_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`]),
  ...(args['ingress-node-options'] === undefined ? [] : [args['ingress-node-options']]),
].join(' ')
const TOPIC = 'lookstream.identify.v1'
const BARE_TOPIC = 'bench.bare.identify'
const PARTITIONS = 6 // what the ingress's ensureTopics creates
const SECRET = randomBytes(32).toString('hex')
const INGRESS_MAIN = args['ingress-main'] ?? (args.source ? join(INGRESS_DIR, 'src/main.ts') : START.entry)
const BARE_WORKER = new URL('./bare-producer-worker.ts', import.meta.url).pathname

const log = (text: string) =>
  process.stderr.write(`[bench ingress ${new Date().toISOString().slice(11, 19)}] ${text}\n`)

interface IngressRun {
  rows: number
  ms: number
  peakRss: number
  /** RSS and heap once ready, before the send. */
  idleRss: number
  idleHeapUsed: number
  idleHeapTotal: number
  idleExternal: number
  /** Highest values seen in the ingress's own /metrics (prom-client default metrics), sampled every 500 ms. */
  peakHeapUsed: number
  peakHeapTotal: number
  peakExternal: number
  ingressCpu: number
  brokerCpu: number
  accepted: number
  rejected: number
  load: string
}

function token(): string {
  const nonce = randomBytes(16).toString('hex')
  return `${nonce}/${createHmac('sha512', SECRET).update(nonce).digest('hex')}`
}

const tmp = mkdtempSync(join(tmpdir(), 'bench-ingress-'))
let broker: LocalKafka | undefined
// The ingress accepts a send only for a registered destination; this bench measures the ingress alone, so it
// registers the segment destination the way a running segment service does (for the bench's duration).
async function registerSegment(url: string): Promise<void> {
  const client = new Redis(url)
  try {
    const entry = { destination: 'segment', instance: 'bench', version: 'bench', connections: ['default'] }
    await new RegistryHeartbeat(client, { ...entry, startedAt: new Date().toISOString() }, 3_600_000).beat()
  } finally {
    client.disconnect()
  }
}

let redis: RedisProcess | undefined
let stub: LookerStub | undefined
let ingress: SpawnedService | undefined
let planId = Date.now()

async function startIngress(extra: Record<string, string> = {}): Promise<SpawnedService> {
  const env: Record<string, string> = {
    ACTION_HUB_SECRET: SECRET,
    HOST: '127.0.0.1',
    PORT: '0',
    KAFKA_BROKERS: broker!.brokers,
    REDIS_URL: redis!.url,
    LOOKER_HOSTS: stub!.origin,
    LOG_LEVEL: 'info',
    ...START.env,
  }
  for (const [name, value] of Object.entries(process.env)) if (name.startsWith('EXP_') && value) env[name] = value
  for (const pair of args['ingress-env']) {
    const at = pair.indexOf('=')
    if (at < 1) throw new Error(`--ingress-env ${pair}: expected NAME=VALUE`)
    env[pair.slice(0, at)] = pair.slice(at + 1)
  }
  Object.assign(env, extra)
  return spawnService(INGRESS_MAIN, env, {
    readyTimeoutMs: 60_000,
    // On the command line rather than in NODE_OPTIONS, which refuses most V8 flags.
    nodeArgs: INGRESS_NODE_OPTIONS.split(/\s+/).filter((arg) => arg !== ''),
    compiled: !args.source && args['ingress-main'] === undefined,
  })
}

// One send through a fresh ingress process: from the execute request until its final {"looker": …} body.
async function ingressRun(file: string, rows: number, extra: Record<string, string> = {}): Promise<IngressRun> {
  ingress = await startIngress(extra)
  const pid = ingress.pid
  const idleRss = rssBytes(pid)
  const peaks = { heapUsed: 0, heapTotal: 0, external: 0 }
  const metricsUrl = `${ingress.url}/metrics`
  const heapGauges = async () => {
    const text = await (await request(metricsUrl)).body.text()
    const gauge = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? 0)
    return {
      heapUsed: gauge('nodejs_heap_size_used_bytes'),
      heapTotal: gauge('nodejs_heap_size_total_bytes'),
      external: gauge('nodejs_external_memory_bytes'),
    }
  }
  const idleHeap = await heapGauges()
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      try {
        const now = await heapGauges()
        peaks.heapUsed = Math.max(peaks.heapUsed, now.heapUsed)
        peaks.heapTotal = Math.max(peaks.heapTotal, now.heapTotal)
        peaks.external = Math.max(peaks.external, now.external)
      } catch {
        // a missed sample only makes the peaks less precise
      }
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  })()
  try {
    const body = {
      type: 'query',
      scheduled_plan: {
        scheduled_plan_id: ++planId,
        title: `bench ${rows} rows`,
        type: 'Look',
        url: 'https://looker.example.com/looks/42',
        query: { model: 'bench', view: 'users', fields: [...FIELDS.dimensions, ...FIELDS.measures].map((f) => f.name) },
        download_url: stub!.offer(file),
      },
      data: {},
      form_params: { connection: 'default' },
    }
    const load = loadAverage()
    const ingressCpu0 = cpuSeconds(pid)
    const brokerCpu0 = cpuSeconds(broker!.pid)
    const started = performance.now()
    const response = await request(`${ingress.url}/actions/segment_identify/execute`, {
      method: 'POST',
      headers: {
        authorization: `Token token="${token()}"`,
        'user-agent': 'LookerOutgoingWebhook/7.0.0',
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
      headersTimeout: 0,
      bodyTimeout: 0,
    })
    const text = await response.body.text()
    const ms = performance.now() - started
    const ingressCpu = cpuSeconds(pid) - ingressCpu0
    const brokerCpu = cpuSeconds(broker!.pid) - brokerCpu0
    const peakRss = peakRssBytes(pid)
    const answer = JSON.parse(text) as {
      looker: { success: boolean; message: string; rows?: { accepted: number; rejected: number } }
    }
    if (response.statusCode !== 200 || !answer.looker.success || answer.looker.rows?.accepted !== rows) {
      throw new Error(`the send did not succeed (HTTP ${response.statusCode}): ${text.trim().slice(0, 2000)}`)
    }
    sampling = false
    await sampler
    return {
      rows,
      ms,
      peakRss,
      idleRss,
      idleHeapUsed: idleHeap.heapUsed,
      idleHeapTotal: idleHeap.heapTotal,
      idleExternal: idleHeap.external,
      peakHeapUsed: peaks.heapUsed,
      peakHeapTotal: peaks.heapTotal,
      peakExternal: peaks.external,
      ingressCpu,
      brokerCpu,
      accepted: answer.looker.rows.accepted,
      rejected: answer.looker.rows.rejected,
      load,
    }
  } finally {
    sampling = false
    // SIGTERM lets a --cpu-prof profile be written; SIGKILL after 30 s.
    await ingress.stop('SIGTERM', 30_000)
    if (args['ingress-output'] !== undefined) {
      appendFileSync(args['ingress-output'], ingress.process.lines().join('\n') + '\n')
    }
    ingress = undefined
  }
}

// Copies every record of `topic` (key, value, headers, exactly as the ingress produced them) into a frames file.
async function extract(topic: string, path: string): Promise<number> {
  const child = spawn('kcat', ['-b', broker!.brokers, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-J'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit')
  const out = createWriteStream(path)
  let count = 0
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === '') continue
    const record = JSON.parse(line) as { key: string; payload: string; headers?: string[] }
    const headers: Record<string, string> = {}
    const list = record.headers ?? []
    for (let h = 0; h < list.length; h += 2) headers[list[h]!] = list[h + 1]!
    if (!out.write(encodeFrame({ key: record.key, value: record.payload, headers }))) await once(out, 'drain')
    count++
  }
  const [code] = (await exited) as [number | null]
  out.end()
  await once(out, 'finish')
  if (code !== 0) throw new Error(`kcat exited with ${code}`)
  return count
}

function bareProducer(
  frames: string,
  topic: string,
  batch: number,
  kafkajsDir: string | undefined,
): Promise<{ messages: number; ms: number; peakRss: number; brokerCpu: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@lookstream/source',
        BARE_WORKER,
        broker!.brokers,
        topic,
        frames,
        String(batch),
        ...(kafkajsDir === undefined ? [] : [kafkajsDir]),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    const brokerCpu0 = cpuSeconds(broker!.pid)
    let cpu = 0
    const sampler = setInterval(() => {
      try {
        cpu = cpuSeconds(child.pid!)
      } catch {
        // exited between samples
      }
    }, 200)
    let out = ''
    child.stdout.on('data', (b: Buffer) => (out += b.toString()))
    child.on('exit', (code) => {
      clearInterval(sampler)
      if (code !== 0) return reject(new Error(`bare producer exited ${code}`))
      const result = JSON.parse(out) as { messages: number; ms: number; peakRss: number }
      resolve({ ...result, brokerCpu: cpuSeconds(broker!.pid) - brokerCpu0, cpu })
    })
  })
}

async function topicCount(admin: ReturnType<Kafka['admin']>, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic)
  return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0)
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

interface BareRun {
  batch: number
  /** 'patched': the installed kafkajs, with lookstream's patch; 'stock': the published 2.2.4. */
  kafkajs: 'patched' | 'stock'
  messages: number
  ms: number
  peakRss: number
  cpu: number
  brokerCpu: number
  load: string
}

/** Bytes of the topic's log segments on the broker's disk. */
function storedBytes(topic: string): number {
  const dir = join(tmp, 'kafka', 'topics', topic)
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.log'))
    .reduce((sum, entry) => sum + statSync(join(entry.parentPath, entry.name)).size, 0)
}

async function compareCompression(file: string, payloadBytes: number): Promise<void> {
  const codecs = args.compression!.split(',').map((c) => c.trim())
  const results: { codec: string; run: IngressRun; bytes: number }[] = []
  for (const codec of codecs) {
    const before = results.length === 0 ? 0 : storedBytes(TOPIC)
    log(`ingress: ${fmt(ROWS)} rows, PRODUCER_COMPRESSION=${codec}`)
    const run = await ingressRun(file, ROWS, { PRODUCER_COMPRESSION: codec })
    results.push({ codec, run, bytes: storedBytes(TOPIC) - before })
  }
  console.log(`Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`)
  console.log(`Payload: ${fmt(ROWS)} rows, ${mb(payloadBytes)} MiB json_detail_lite_stream; action segment_identify`)
  console.log('')
  console.log(
    '| PRODUCER_COMPRESSION | rows | time | rows/s | bytes to Kafka (stored batches) | bytes/row | CPU s (ingress / broker) | peak RSS | load avg at start |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const { codec, run, bytes } of results) {
    console.log(
      `| ${codec} | ${fmt(run.rows)} | ${(run.ms / 1000).toFixed(1)} s | ${fmt((run.rows * 1000) / run.ms)} | ${mb(bytes)} MiB | ${fmt(bytes / run.rows)} | ${run.ingressCpu.toFixed(1)} / ${run.brokerCpu.toFixed(1)} | ${mb(run.peakRss)} MiB | ${run.load} |`,
    )
  }
  console.log(
    `\n${JSON.stringify(results.map(({ codec, run, bytes }) => ({ codec, rows: run.rows, ms: run.ms, bytes })))}`,
  )
}

try {
  if (CPU_PROF_DIR !== undefined) mkdirSync(CPU_PROF_DIR, { recursive: true })
  const bigFile = join(tmp, `look-${ROWS}.json`)
  const smallFile = join(tmp, `look-${SMALL_ROWS}.json`)
  const bigBytes = await writeLook(bigFile, ROWS)
  await writeLook(smallFile, SMALL_ROWS)
  log(`Looks written: ${fmt(ROWS)} rows (${mb(bigBytes)} MiB), ${fmt(SMALL_ROWS)} rows`)

  if (!args.source && args['ingress-main'] === undefined) {
    log('building the ingress (tsc -b services/ingress)')
    buildProject(INGRESS_DIR)
  }
  broker = await startLocalKafka({ port: 0, dataDir: join(tmp, 'kafka'), logLevel: 'warn' })
  redis = await startRedis()
  await registerSegment(redis.url)
  stub = await startLookerStub()
  const kafka = new Kafka({ brokers: [broker.brokers], clientId: 'bench-ingress', logLevel: logLevel.ERROR })
  const admin = kafka.admin()
  await admin.connect()
  try {
    if (args.compression !== undefined) {
      await compareCompression(bigFile, bigBytes)
    } else {
      log(`ingress: ${fmt(ROWS)} rows`)
      const big = await ingressRun(bigFile, ROWS)
      log(`ingress: ${fmt(ROWS)} rows in ${fmt(big.ms)} ms, peak RSS ${mb(big.peakRss)} MiB`)
      const onTopic = await topicCount(admin, TOPIC)
      if (onTopic !== ROWS) throw new Error(`${TOPIC} holds ${onTopic} records, expected ${ROWS}`)

      const bares: BareRun[] = []
      let parse: { rows: number; bytes: number; ms: number; load: string } | undefined
      if (!args['ingress-only']) {
        const frames = join(tmp, 'messages.frames')
        const extracted = await extract(TOPIC, frames)
        if (extracted !== ROWS) throw new Error(`kcat read ${extracted} records, expected ${ROWS}`)
        const variants: [BareRun['kafkajs'], string | undefined][] = [['patched', undefined]]
        if (!args['no-stock']) variants.push(['stock', stockKafkajs(join(tmp, 'kafkajs-stock'))])
        for (const [kafkajs, kafkajsDir] of variants) {
          for (const batch of BATCHES) {
            const topic = `${BARE_TOPIC}.${kafkajs}.${batch}`
            await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true })
            log(`bare producer (${kafkajs} kafkajs): ${fmt(ROWS)} messages, batches of ${batch}`)
            const load = loadAverage()
            const bare = await bareProducer(frames, topic, batch, kafkajsDir)
            const onBare = await topicCount(admin, topic)
            if (onBare !== ROWS) throw new Error(`${topic} holds ${onBare} records, expected ${ROWS}`)
            bares.push({ ...bare, batch, kafkajs, load })
          }
        }
        log('JSON.parse ceiling')
        const load = loadAverage()
        parse = { ...parseRows(bigFile), load }
        if (parse.rows !== ROWS) throw new Error(`parsed ${parse.rows} rows, expected ${ROWS}`)
      }

      log(`ingress: ${fmt(SMALL_ROWS)} rows (fresh process)`)
      const small = await ingressRun(smallFile, SMALL_ROWS)

      const rate = (n: number, ms: number) => (n * 1000) / ms
      const bestOf = (kafkajs: BareRun['kafkajs']) => {
        const rates = bares.filter((bare) => bare.kafkajs === kafkajs).map((bare) => rate(bare.messages, bare.ms))
        return rates.length === 0 ? Number.NaN : Math.max(...rates)
      }
      const bareRate = bestOf('patched')
      const stockRate = bestOf('stock')
      const percent = (r: number, of: number) => (Number.isNaN(of) ? '' : `${((r / of) * 100).toFixed(0)}%`)
      const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`
      console.log(`Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`)
      console.log(`Payload: ${fmt(ROWS)} rows, ${mb(bigBytes)} MiB json_detail_lite_stream; action segment_identify`)
      console.log(
        `Ingress: ${args.source ? 'TypeScript sources' : 'compiled (dist/)'}; Node options: ${INGRESS_NODE_OPTIONS || '(none)'}; start-script environment: ${
          Object.entries(START.env)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ') || '(none)'
        }`,
      )
      if (args['ingress-main'] !== undefined) console.log(`Ingress entry point: ${INGRESS_MAIN}`)
      if (args['ingress-env'].length > 0) console.log(`Ingress environment: ${args['ingress-env'].join(' ')}`)
      console.log('')
      console.log(
        '| measurement | rows | time | rows/s | vs best bare producer, patched kafkajs | vs best bare producer, stock kafkajs | CPU s (process / broker) | load avg at start |',
      )
      console.log('|---|---:|---:|---:|---:|---:|---:|---|')
      for (const run of [big, small]) {
        const r = rate(run.rows, run.ms)
        console.log(
          `| ingress: execute → final body (all rows acked) | ${fmt(run.rows)} | ${secs(run.ms)} | ${fmt(r)} | ${percent(r, bareRate)} | ${percent(r, stockRate)} | ${run.ingressCpu.toFixed(1)} / ${run.brokerCpu.toFixed(1)} | ${run.load} |`,
        )
      }
      for (const bare of bares) {
        const r = rate(bare.messages, bare.ms)
        const own = bare.kafkajs === 'patched' ? bareRate : stockRate
        console.log(
          `| ceiling: bare producer, ${bare.kafkajs} kafkajs, sendBatch of ${bare.batch} | ${fmt(bare.messages)} | ${secs(bare.ms)} | ${fmt(r)} | ${bare.kafkajs === 'patched' ? percent(r, own) : ''} | ${bare.kafkajs === 'stock' ? percent(r, own) : ''} | ${bare.cpu.toFixed(1)} / ${bare.brokerCpu.toFixed(1)} | ${bare.load} |`,
        )
      }
      if (parse) {
        console.log(
          `| ceiling: JSON.parse per row (1 MiB reads, newline split, UTF-8 decode; one process) | ${fmt(parse.rows)} | ${secs(parse.ms)} | ${fmt(rate(parse.rows, parse.ms))} | | | | ${parse.load} |`,
        )
      }
      console.log('')
      console.log(
        '| ingress process (fresh per size) | rows | RSS when ready | peak RSS (VmHWM) | heap used: ready / peak | heap total: ready / peak | external: ready / peak |',
      )
      console.log('|---|---:|---:|---:|---:|---:|---:|')
      for (const run of [small, big]) {
        console.log(
          `| ingress, segment_identify send | ${fmt(run.rows)} | ${mb(run.idleRss)} MiB | ${mb(run.peakRss)} MiB | ${mb(run.idleHeapUsed)} / ${mb(run.peakHeapUsed)} MiB | ${mb(run.idleHeapTotal)} / ${mb(run.peakHeapTotal)} MiB | ${mb(run.idleExternal)} / ${mb(run.peakExternal)} MiB |`,
        )
      }
      for (const bare of bares) {
        console.log(
          `| bare producer, ${bare.kafkajs} kafkajs, sendBatch of ${bare.batch} | ${fmt(bare.messages)} | | ${mb(bare.peakRss)} MiB | | | |`,
        )
      }
      const summary = {
        rows: ROWS,
        payloadBytes: bigBytes,
        ingressNodeOptions: INGRESS_NODE_OPTIONS,
        ingress: big,
        ingressSmall: small,
        bare: bares,
        parse,
        ingressVsBestBare: rate(big.rows, big.ms) / bareRate,
        ingressVsBestStockBare: rate(big.rows, big.ms) / stockRate,
        rssGrowth: big.peakRss / small.peakRss,
      }
      console.log(`\n${JSON.stringify(summary)}`)
    }
  } finally {
    await admin.disconnect()
  }
} finally {
  await ingress?.stop('SIGKILL', 5_000)
  await stub?.close()
  await redis?.stop()
  await broker?.stop()
  if (args.keep) log(`kept ${tmp}`)
  else rmSync(tmp, { recursive: true, force: true })
}
