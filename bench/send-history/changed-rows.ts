// "Changed rows only": Redis bytes per remembered row, and the ingress's rate with the option off and on, in one
// run on one ingress process (its TypeScript sources, as `pnpm dev` runs them), local-kafka and redis-server.
//   node --conditions=@lookstream/source bench/send-history/changed-rows.ts [--rows 200000] [--repeat 2]
// Scenarios, each a send of the same generated Look (bench/ingress/look-generator.ts, ~330 B a row):
//   off           lookstream_rows=all: every row mapped and produced (today's behaviour)
//   on, first run lookstream_rows=changed on a new schedule: every row produced and remembered
//   on, unchanged the same Look again: every row mapped, fingerprinted and skipped
//   on, 1% changed every 100th row changed: 1% produced, 99% skipped
// Prints a Markdown table and a JSON summary (bench/README.md, send history).
import { RegistryHeartbeat } from '@lookstream/events'
import { startLocalKafka } from '@lookstream/local-kafka'
import { spawnService, startRedis } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { createHmac, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { FIELDS, RAN_AT, rowJson } from '../ingress/look-generator.ts'
import { startLookerStub } from '../ingress/looker-stub.ts'

const { values: args } = parseArgs({
  options: { rows: { type: 'string', default: '200000' }, repeat: { type: 'string', default: '2' } },
})
const ROWS = Number(args.rows)
const REPEAT = Number(args.repeat)
const SECRET = randomBytes(32).toString('hex')
const log = (text: string) => process.stderr.write(`[bench changed-rows] ${text}\n`)

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
const broker = await startLocalKafka({ dataDir: join(tmp, 'kafka'), logLevel: 'error' })
const redisProcess = await startRedis()
const stub = await startLookerStub()
const redis = new Redis(redisProcess.url)
const ingress = await (async () => {
  const entry = { destination: 'segment', instance: 'bench', version: 'bench', connections: ['default'] }
  await new RegistryHeartbeat(redis, { ...entry, startedAt: new Date().toISOString() }, 3_600_000).beat()
  return spawnService(
    new URL('../../services/ingress/src/main.ts', import.meta.url).pathname,
    {
      ACTION_HUB_SECRET: SECRET,
      SEND_HISTORY_SECRET: randomBytes(16).toString('hex'),
      HOST: '127.0.0.1',
      PORT: '0',
      KAFKA_BROKERS: broker.brokers,
      REDIS_URL: redisProcess.url,
      LOOKER_HOSTS: stub.origin,
      LOG_LEVEL: 'info',
      CHANGED_ROWS_MAX_ROWS: String(Math.max(ROWS, 1)),
    },
    { readyTimeoutMs: 60_000 },
  )
})()

interface Result {
  scenario: string
  ms: number
  rowsPerSecond: number
  accepted: number
  skipped: number | undefined
}

async function send(scenario: string, file: string, planId: number, rows: 'all' | 'changed'): Promise<Result> {
  const started = performance.now()
  const response = await request(`${ingress.url}/actions/segment_identify/execute`, {
    method: 'POST',
    headers: { authorization: `Token token="${token()}"`, 'content-type': 'application/json' },
    body: JSON.stringify({
      type: 'query',
      scheduled_plan: { scheduled_plan_id: planId, download_url: stub.offer(file) },
      form_params: { lookstream_rows: rows },
    }),
    headersTimeout: 0,
    bodyTimeout: 0,
  })
  const answer = JSON.parse(await response.body.text()) as {
    looker: { success: boolean; message: string; rows: { accepted: number; skipped_unchanged?: number } }
  }
  const ms = performance.now() - started
  if (!answer.looker.success) throw new Error(`${scenario}: ${answer.looker.message.slice(0, 500)}`)
  const result = {
    scenario,
    ms,
    rowsPerSecond: Math.round(ROWS / (ms / 1000)),
    accepted: answer.looker.rows.accepted,
    skipped: answer.looker.rows.skipped_unchanged,
  }
  log(JSON.stringify(result))
  return result
}

async function rememberedBytes(planId: number): Promise<{ keys: number; bytes: number; rows: number }> {
  const tag = `segment_identify|default|${planId}`
  const meta = await redis.hgetall(`lookstream:changed:{${tag}}:meta`)
  let bytes = Number(await redis.memory('USAGE', `lookstream:changed:{${tag}}:meta`))
  const chunks = Number(meta.chunks)
  for (let i = 0; i < chunks; i++)
    bytes += Number(await redis.memory('USAGE', `lookstream:changed:{${tag}}:g${meta.gen}:${i}`))
  return { keys: chunks + 1, bytes, rows: Number(meta.rows) }
}

try {
  const base = join(tmp, 'look.json')
  const changed = join(tmp, 'look-1pct.json')
  await writeLook(base, undefined)
  await writeLook(changed, 100)
  log(`${ROWS} rows written; ingress at ${ingress.url}`)
  const results: Result[] = []
  let plan = Date.now()
  let memory: { keys: number; bytes: number; rows: number } | undefined
  for (let r = 0; r < REPEAT; r++) {
    results.push(await send('off', base, ++plan, 'all'))
    const on = ++plan
    results.push(await send('on, first run', base, on, 'changed'))
    memory = await rememberedBytes(on)
    results.push(await send('on, unchanged', base, on, 'changed'))
    results.push(await send('on, 1% changed', changed, on, 'changed'))
  }
  console.log(`| scenario | rows | ms | rows/s | produced | skipped |`)
  console.log(`| --- | ---: | ---: | ---: | ---: | ---: |`)
  for (const r of results) {
    console.log(
      `| ${r.scenario} | ${ROWS} | ${Math.round(r.ms)} | ${r.rowsPerSecond} | ${r.accepted} | ${r.skipped ?? '—'} |`,
    )
  }
  console.log(
    `\nremembered: ${memory!.rows} rows in ${memory!.keys} keys, ${memory!.bytes} bytes (MEMORY USAGE): ${(memory!.bytes / memory!.rows).toFixed(2)} bytes per row`,
  )
  console.log(JSON.stringify({ rows: ROWS, results, memory }))
} finally {
  await ingress.stop('SIGTERM', 30_000)
  redis.disconnect()
  await stub.close()
  await redisProcess.stop()
  await broker.stop()
  rmSync(tmp, { recursive: true, force: true })
}
