// A Braze send end to end, beside the Segment pipeline in the same run:
//   node --conditions=@lookstream/source bench/braze/run.ts [--rows 1000000] [--segment-rows N] [--warmup 5000]
//        [--only braze|segment] [--env NAME=VALUE]… (more environment for the braze service) [--cpu-prof-dir DIR]
// Two phases, one after the other on the same machine, each on its own fresh stack (local-kafka on disk,
// redis-server, the simulator in its own process, the ingress and the destination service, both run as their
// `pnpm start` runs them: compiled, with their start scripts' Node flags):
// 1. segment: a --segment-rows (default --rows) segment_identify send, as bench/pipeline measures it;
// 2. braze: a --rows braze send (users created), the Braze simulator's limit (6,000 per 3 s) above the service's
//    default (3,000 per 3 s per workspace).
// Each: execute POST → last row accepted by the simulator, rows/s; every row accepted once (the simulator's
// accepted count equals the rows); the destination service's and the ingress's peak RSS (VmHWM, warm-up
// included).
import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { createServer, type ServerResponse } from 'node:http'
import { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { spawnSimulators } from '@lookstream/simulators'
import { buildProject, readStartCommand, spawnService } from '@lookstream/testing'
import { startKafkaAndRedis, stopsFor } from '../e2e/identify-backlog.ts'
import { cpuSeconds, loadAverage, peakRssBytes } from '../ingress/proc-stats.ts'
import { startLookerSource } from '../pipeline/looker-source.ts'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    'segment-rows': { type: 'string' },
    warmup: { type: 'string', default: '5000' },
    only: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
    'cpu-prof-dir': { type: 'string' },
  },
})
const ROWS = Number(args.rows)
const SEGMENT_ROWS = Number(args['segment-rows'] ?? args.rows)
const WARMUP_ROWS = Number(args.warmup)
const EXTRA_ENV = Object.fromEntries(
  args.env.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
)
// --cpu-prof-dir DIR: both destination services write a V8 CPU profile there when they stop.
const PROFILE_ENV: Record<string, string> =
  args['cpu-prof-dir'] === undefined ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${args['cpu-prof-dir']}` }
const ROOT = new URL('../../', import.meta.url).pathname
const BRAZE_KEY = 'bench-braze-api-key'
const SEGMENT_KEY = 'segment-write-key' // the simulators CLI's default
const SECRET = randomBytes(32).toString('hex')

const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)
const now = () => performance.timeOrigin + performance.now()
const MiB = (bytes: number) => +(bytes / 1024 / 1024).toFixed(1)

// A Braze Look (json_detail_lite_stream): the identifier tagged braze_id, four braze[…] attributes; rows of
// about the size of bench/pipeline's identify rows.
const BRAZE_FIELDS = {
  dimensions: [
    { name: 'users.id', label: 'Users ID', view: 'users', tags: ['braze_id'], type: 'string' },
    { name: 'users.first_name', label: 'First Name', view: 'users', tags: ['braze[first_name]'], type: 'string' },
    { name: 'users.plan', label: 'Plan', view: 'users', tags: ['braze[plan]'], type: 'string' },
    { name: 'users.country', label: 'Country', view: 'users', tags: ['braze[country]'], type: 'string' },
  ],
  measures: [
    { name: 'orders.count', label: 'Orders', view: 'orders', tags: ['braze[orders]'], measure: true, type: 'count' },
  ],
  table_calculations: [],
  pivots: [],
}
const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'ES']

function brazeRow(prefix: string, i: number): string {
  return (
    `{"users.id":{"value":"${prefix}-${i}"},"users.first_name":{"value":"Name ${i}"},` +
    `"users.plan":{"value":"${i % 3 === 0 ? 'annual' : 'monthly'}"},"users.country":{"value":"${COUNTRIES[i % 7]}"},` +
    `"orders.count":{"value":${i % 50}}}`
  )
}

/** The one-time download_url of a Braze Look, streamed as fast as the socket takes it. */
async function startBrazeLooks(): Promise<{
  origin: string
  serve(prefix: string, rows: number): string
  close(): Promise<void>
}> {
  const looks = new Map<string, { prefix: string; rows: number }>()
  const write = async (res: ServerResponse, chunk: string) => {
    if (!res.write(chunk)) await once(res, 'drain')
  }
  const server = createServer((req, res) => {
    const look = looks.get(req.url ?? '')
    looks.delete(req.url ?? '')
    if (look === undefined) return void res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'application/json' })
    void (async () => {
      await write(res, `{"ran_at":"${new Date().toISOString()}","fields":${JSON.stringify(BRAZE_FIELDS)},"data":[`)
      for (let next = 0; next < look.rows;) {
        let chunk = ''
        const until = Math.min(look.rows, next + 500)
        for (; next < until; next++)
          chunk += next === 0 ? brazeRow(look.prefix, next) : `,${brazeRow(look.prefix, next)}`
        await write(res, chunk)
      }
      res.end('],"has_totals":false}')
    })().catch(() => res.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    serve(prefix, rows) {
      const path = `/downloads/${randomUUID()}`
      looks.set(path, { prefix, rows })
      return `${origin}${path}`
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

interface PhaseResult {
  destination: 'segment' | 'braze'
  rows: number
  rowsPerSecond: number
  executeToLastAcceptedMs: number
  ingressAnsweredMs: number
  simulatorRequests: number
  simulatorAccepted: number
  servicePeakRssMiB: number
  ingressPeakRssMiB: number
  serviceCpuSeconds: number
  loadAverage: string
}

async function phase(destination: 'segment' | 'braze', rows: number): Promise<PhaseResult> {
  const dataDir = mkdtempSync(join(tmpdir(), `bench-${destination}-`))
  const stops = stopsFor(dataDir)
  try {
    log(`${destination}: starting local-kafka, redis-server, simulator, Looker stub, ingress, ${destination} service`)
    const { kafka, redis } = await startKafkaAndRedis(dataDir, stops)
    const simulator = await spawnSimulators(
      destination === 'segment'
        ? ['--segment-port', '0', '--no-rate-limits', '--max-items', '1000', '--max-requests', '1000']
        : ['--braze-port', '0', '--braze-api-key', BRAZE_KEY, '--max-items', '1000', '--max-requests', '1000'],
    )
    stops.push(() => simulator.stop())
    const sim = simulator.urls[destination]!
    const admin = async <T>(path: string, method = 'GET', body?: unknown): Promise<T> => {
      const res = await request(`${sim}/__admin${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      })
      return (await res.body.json()) as T
    }
    if (destination === 'braze') await admin('/rate-limits', 'PUT', { requests: { limit: 6000, windowMs: 3000 } })

    const segmentLooks = await startLookerSource()
    stops.push(() => segmentLooks.close())
    const brazeLooks = await startBrazeLooks()
    stops.push(() => brazeLooks.close())
    const common = {
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: kafka.brokers,
      REDIS_URL: redis.url,
    }
    const ingressDir = join(ROOT, 'services/ingress')
    buildProject(ingressDir)
    const ingressStart = readStartCommand(ingressDir)
    const ingress = await spawnService(
      ingressStart.entry,
      {
        ...ingressStart.env,
        ...common,
        ACTION_HUB_SECRET: SECRET,
        LOOKER_HOSTS: `${segmentLooks.origin},${brazeLooks.origin}`,
      },
      { readyTimeoutMs: 60_000, compiled: true, nodeArgs: ingressStart.nodeArgs },
    )
    stops.push(() => ingress.stop('SIGTERM', 10_000))
    const serviceDir = join(ROOT, `services/${destination}`)
    buildProject(serviceDir)
    const serviceStart = readStartCommand(serviceDir)
    const serviceEnv: Record<string, string> =
      destination === 'segment'
        ? { SEGMENT_WRITE_KEY: SEGMENT_KEY, SEGMENT_API_URL: sim, SEGMENT_RATE_LIMIT_RPS: '1000' }
        : {
            BRAZE_API_KEY: BRAZE_KEY,
            BRAZE_REST_ENDPOINT: sim,
            BRAZE_ALLOWED_HOSTS: new URL(sim).host,
            ...EXTRA_ENV,
          }
    const service = await spawnService(
      serviceStart.entry,
      { ...serviceStart.env, ...common, ...serviceEnv, ...PROFILE_ENV },
      { readyTimeoutMs: 60_000, compiled: true, nodeArgs: serviceStart.nodeArgs },
    )
    stops.push(() => service.stop('SIGTERM', 20_000))

    const nonce = randomBytes(16).toString('hex')
    const authorization = `Token token="${nonce}/${createHmac('sha512', SECRET).update(nonce).digest('hex')}"`
    const execute = async (prefix: string, count: number, planId: number) => {
      const downloadUrl =
        destination === 'segment'
          ? segmentLooks.serve({ prefix, rows: count, ranAt: new Date().toISOString() }).url
          : brazeLooks.serve(prefix, count)
      const startedAt = now()
      const res = await request(
        `${ingress.url}/actions/${destination === 'segment' ? 'segment_identify' : 'braze'}/execute`,
        {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/json', 'user-agent': 'LookerOutgoingWebhook/24.0.0' },
          body: JSON.stringify({
            type: 'query',
            scheduled_plan: { scheduled_plan_id: planId, type: 'Look', download_url: downloadUrl },
            data: {},
            form_params: destination === 'braze' ? { braze_update_existing_only: 'no' } : {},
          }),
          headersTimeout: 0,
          bodyTimeout: 0,
        },
      )
      const body = JSON.parse((await res.body.text()).trim()) as { looker: { success: boolean; message: string } }
      if (!body.looker.success) throw new Error(`execute failed: ${body.looker.message}`)
      return { startedAt, answeredAt: now() }
    }
    const waitAccepted = async (count: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const { counters } = await admin<{ counters: { acceptedIds: number } }>('/state')
        if (counters.acceptedIds >= count) return
        if (Date.now() > deadline) throw new Error(`only ${counters.acceptedIds} of ${count} accepted`)
        await sleep(100)
      }
    }

    if (WARMUP_ROWS > 0) {
      log(`${destination}: warm-up, ${WARMUP_ROWS} rows`)
      await execute('wu', WARMUP_ROWS, 0)
      await waitAccepted(WARMUP_ROWS, 120_000)
    }
    await admin('/reset', 'POST')
    log(`${destination}: ${rows} rows`)
    const load0 = loadAverage()
    const cpu0 = cpuSeconds(service.pid)
    const sent = await execute('tp', rows, 1)
    log(`${destination}: execute answered after ${Math.round(sent.answeredAt - sent.startedAt)} ms`)
    await waitAccepted(rows, 1_800_000)
    // The accepted ids are kept in acceptance order: the last one carries the time of the last acceptance.
    const last = await admin<{ ids: [string, number][] }>(`/ids?offset=${rows - 1}&limit=1`)
    const lastAccepted = last.ids[0]![1]
    const state = await admin<{ counters: { requests: number; accepted: number } }>('/state')
    const result: PhaseResult = {
      destination,
      rows,
      rowsPerSecond: Math.round(rows / ((lastAccepted - sent.startedAt) / 1000)),
      executeToLastAcceptedMs: Math.round(lastAccepted - sent.startedAt),
      ingressAnsweredMs: Math.round(sent.answeredAt - sent.startedAt),
      simulatorRequests: state.counters.requests,
      simulatorAccepted: state.counters.accepted,
      servicePeakRssMiB: MiB(peakRssBytes(service.pid)),
      ingressPeakRssMiB: MiB(peakRssBytes(ingress.pid)),
      serviceCpuSeconds: +(cpuSeconds(service.pid) - cpu0).toFixed(1),
      loadAverage: `${load0} → ${loadAverage()}`,
    }
    if (result.simulatorAccepted !== rows) {
      throw new Error(`${destination}: the simulator accepted ${result.simulatorAccepted} items for ${rows} rows`)
    }
    log(JSON.stringify(result))
    return result
  } finally {
    await stops.stopAll()
  }
}

try {
  const results: PhaseResult[] = []
  if (args.only !== 'braze') results.push(await phase('segment', SEGMENT_ROWS))
  if (args.only !== 'segment') results.push(await phase('braze', ROWS))
  process.stdout.write(
    [
      '| send | rows | execute → last accepted | rows/s | requests | service peak RSS | ingress peak RSS | service CPU s | load average |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|',
      ...results.map(
        (r) =>
          `| ${r.destination} | ${r.rows.toLocaleString('en')} | ${(r.executeToLastAcceptedMs / 1000).toFixed(1)} s | ${r.rowsPerSecond.toLocaleString('en')} | ${r.simulatorRequests.toLocaleString('en')} | ${r.servicePeakRssMiB} MiB | ${r.ingressPeakRssMiB} MiB | ${r.serviceCpuSeconds} | ${r.loadAverage} |`,
      ),
      '',
    ].join('\n'),
  )
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  process.exitCode = 1
}
