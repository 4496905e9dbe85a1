// `npm run chaos`: real Looker sends through `npm start`'s components (scripts/components.ts: local-kafka on disk,
// redis-server, s3rver, the simulators, the ingress and every destination service, compiled as their `pnpm start`
// runs them) into every destination while faults are injected; one table per destination and fault.
//   npm run chaos -- [--quick] [--rows N] [--kills N] [--destinations segment,braze,…] [--faults rates,…]
//                    [--seed N] [--redis-down-s N] [--out PATH-PREFIX]
// Faults, one phase each, every destination sending at once in every phase:
//   rates         the simulators answer 429 (Retry-After: 1) on 20 % of requests, 500 on 10 %, hang on 5 %
//                 (recurly-engage: its S3 answers 503 SlowDown, 500 and hangs at the same rates, through a proxy)
//   bad-rows      rows each destination must refuse: a simulator rule answers 400 to any request holding one
//                 (the service must isolate and dead-letter exactly them); recurly-engage: cells the ingress's
//                 row check refuses (they never reach Kafka, so its DLQ stays empty)
//   replica       a second replica of each service joins mid-send and leaves (SIGTERM) mid-send
//   service-kill  kill -9 of each destination service --kills times at random moments of its send, restarted
//   redis         redis-server stopped (SIGTERM) for --redis-down-s seconds after the sends were accepted,
//                 restarted on its port with its data (npm start's Redis persists: append-only file)
//   redis-lost    the same, but its data directory is emptied before the restart: it comes back empty, as a Redis
//                 without persistence would (recurly-engage rebuilds its open send from S3 staging, ADR 0019)
//   broker        kill -9 of local-kafka after the sends were accepted, restarted on its port and data dir
// Defaults: every fault, 10,000 rows per send, 10 kills, Redis down 30 s; --quick (npm test's): every fault,
// 1,000 rows (3,000 in the replica, service-kill and outage phases), 2 kills, Redis down 10 s. Kills wait for
// random shares of a send's rows up to the one that leaves four rounds of requests still to go (at most 90 %). The
// random moments come from --seed (printed; pass it again to replay a run).
// Writes PATH-PREFIX.json and .md (default .data/chaos/report) and exits 1 when a target is missed (2 when the run
// itself failed). CHAOS_DEBUG=1 also prints the file runtime's metrics of a send that did not complete.
// bench/README.md (chaos) says what each column of the table means.
import { randomBytes, createHmac, randomInt } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { seededRandom } from '@lookstream/simulators'
import { HARNESS_S3_CREDENTIALS, readTopicWithKcat, s3Client, waitFor } from '@lookstream/testing'
import {
  admin,
  DESTINATIONS,
  destinations,
  type Destination,
  type DestinationName,
  type Observation,
} from './destinations.ts'
import { startS3FaultProxy, type S3FaultProxy } from './s3-fault-proxy.ts'
import { loadAverage } from '../ingress/proc-stats.ts'

export const FAULTS = ['rates', 'bad-rows', 'replica', 'service-kill', 'redis', 'redis-lost', 'broker'] as const
export type Fault = (typeof FAULTS)[number]
/** The faults of --quick: every one, with fewer rows and shorter outages. */
export const QUICK_FAULTS: readonly Fault[] = FAULTS
/** Faults that stop a shared component (Redis or the broker) once for every destination of the phase. */
const OUTAGES: readonly Fault[] = ['redis', 'redis-lost', 'broker']

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rows: { type: 'string' },
    kills: { type: 'string' },
    destinations: { type: 'string', default: DESTINATIONS.join(',') },
    faults: { type: 'string' },
    seed: { type: 'string' },
    'redis-down-s': { type: 'string' },
    out: { type: 'string', default: '.data/chaos/report' },
  },
  strict: true,
})

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got "${value}"`)
  return n
}

const QUICK = args.quick
const ROWS = positive('rows', args.rows, QUICK ? 1000 : 10_000)
const KILLS = positive('kills', args.kills, QUICK ? 2 : 10)
const REDIS_DOWN_MS = positive('redis-down-s', args['redis-down-s'], QUICK ? 10 : 30) * 1000
const SEED = positive('seed', args.seed, randomInt(2 ** 31))
const PHASE_TIMEOUT_MS = QUICK ? 120_000 : 900_000
/** A send with no progress and no fault event for this long is reported as stalled. */
const STALL_MS = QUICK ? 30_000 : 120_000
const RECOVERY_TARGET_MS = 5000
const SELECTED = args.destinations.split(',').filter(Boolean) as DestinationName[]
const SELECTED_FAULTS = (args.faults ?? (QUICK ? QUICK_FAULTS : FAULTS).join(',')).split(',').filter(Boolean) as Fault[]
for (const name of SELECTED) if (!DESTINATIONS.includes(name)) throw new Error(`unknown destination ${name}`)
for (const fault of SELECTED_FAULTS) if (!FAULTS.includes(fault)) throw new Error(`unknown fault ${fault}`)

const ROOT = new URL('../../', import.meta.url).pathname
const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)
const now = () => performance.timeOrigin + performance.now()

// The component table of `npm start`, loaded by path at run time: scripts/ is outside this project's tsconfig.
interface Running {
  address: string
  detail: string
  pid?: number
  exited: Promise<string>
  stop(): Promise<void>
}
interface Component {
  name: string
  skip?(ctx: unknown): string | undefined
  start(ctx: unknown): Promise<Running>
}
const { components } = (await import(pathToFileURL(join(ROOT, 'scripts/components.ts')).href)) as {
  components: Component[]
}

/** The faults' knobs on the services: short backoffs and timeouts, so a phase fits in seconds (as the e2e tests). */
const TUNING: Record<string, string> = {
  DELIVERY_BACKOFF_BASE_MS: '50',
  DELIVERY_BACKOFF_MAX_MS: '1000',
  DELIVERY_REQUEST_TIMEOUT_MS: '2000',
  DELIVERY_RETRY_DELAY_MS: '500',
  DELIVERY_RETRY_MAX_DELAY_MS: '2000',
  DELIVERY_REGISTRY_HEARTBEAT_MS: '500',
  KAFKA_SESSION_TIMEOUT_MS: '6000',
  KAFKA_HEARTBEAT_INTERVAL_MS: '500',
  SHUTDOWN_TIMEOUT_MS: '15000',
  // At most 4 requests in flight per service (the default is higher), so that the held latency below holds.
  DELIVERY_MAX_IN_FLIGHT_REQUESTS: '4',
  // Smaller requests than the destinations allow: a send spans many requests, so faults land inside it.
  DELIVERY_MAX_BATCH_ITEMS: '100',
}
/** Every simulator answers after 50–150 ms, as a real API across the internet does (and sends last long enough). */
const LATENCY = { latencyMs: 50, latencyJitterMs: 100 }
/**
 * Until a component fault starts (or a replica has joined), every simulator and the S3 proxy answer after 1.5 s (under
 * the services' 2 s request timeout): the sends are surely still in flight when the fault lands.
 */
const HOLD = { latencyMs: 1500, latencyJitterMs: 0 }
/**
 * The share of a replica phase's rows the Look streams before the replica has joined; the rest follow once it has.
 * Under the held latency the head keeps the service busy until then; the replica leaves once 40–70 % of the rows
 * are delivered, so it also leaves mid-send.
 */
const REPLICA_HEAD_SHARE = 0.3
/** Rows one round of requests of a service can carry (its requests in flight × items per request, TUNING). */
const ROUND_ROWS = Number(TUNING.DELIVERY_MAX_IN_FLIGHT_REQUESTS) * Number(TUNING.DELIVERY_MAX_BATCH_ITEMS)

async function setLatency(
  d: Destination,
  latency: { latencyMs: number; latencyJitterMs: number },
  proxy: S3FaultProxy,
) {
  if (d.simulator === undefined) proxy.faults.setLatency(latency.latencyMs, latency.latencyJitterMs)
  else await admin(ctx.addresses[d.simulator]!, '/faults', 'PATCH', latency)
}

export interface Row {
  destination: DestinationName
  fault: Fault
  rowsSent: number
  /** Rows the ingress accepted into Kafka. */
  accepted: number
  delivered: number
  rawRedeliveries: number
  effectiveDuplicates: number
  deadLettered: number
  /** Every dead letter is a bad row and every bad row is dead-lettered once (ingress-refused rows: none expected). */
  deadLetteredAsExpected: boolean
  expectedDeadLetters: number
  badDelivered: number
  lost: number
  /** Return of the component (or restart of the service) → first progress at the destination; the worst one. */
  recoveryMs: number | null
  /**
   * Broker outages: the service delivered every row of the send while the broker was down (from what it had fetched
   * before), so there was nothing left to resume when it came back and recoveryMs has no value.
   */
  deliveredDuringOutage: boolean
  /** Fault events (kills, joins, leaves, outages) that landed while the send was in flight, of all. */
  inFlightEvents: number
  faultEvents: number
  longestStallMs: number
  notes: string[]
  misses: string[]
}

interface Report {
  seed: number
  quick: boolean
  rows: number
  kills: number
  redisDownMs: number
  startedAt: string
  loadAverage: string
  durationS: number
  results: Row[]
}

const secret = randomBytes(32).toString('hex')
const dataDir = mkdtempSync(join(tmpdir(), 'lookstream-chaos-'))
const env: Record<string, string | undefined> = {
  ...process.env,
  LOCAL_KAFKA_DATA_DIR: join(dataDir, 'kafka'),
  LOCAL_REDIS_DATA_DIR: join(dataDir, 'redis'),
  LOCAL_S3_DATA_DIR: join(dataDir, 's3'),
  ACTION_HUB_SECRET: secret,
  VIEWER_TOKEN: randomBytes(16).toString('hex'),
  SEND_HISTORY_SECRET: randomBytes(32).toString('hex'),
  LOG_LEVEL: 'warn',
}
for (const name of ['KAFKA_BROKERS', 'REDIS_URL', 'RECURLY_ENGAGE_S3_BUCKET', 'LOCAL_KAFKA_PORT', 'LOCAL_REDIS_PORT']) {
  delete env[name]
}
const serviceEnv: Record<string, Record<string, string>> = {
  ingress: { DESTINATION_REGISTRY_CACHE_MS: '0' },
}
for (const name of DESTINATIONS) serviceEnv[name] = { ...TUNING }
// The file runtime's composer lease and sweep, shortened like the backoffs: a killed composer's lease expires in 5 s.
Object.assign(serviceEnv['recurly-engage']!, {
  RECURLY_ENGAGE_S3_REQUEST_TIMEOUT_MS: '2000',
  DELIVERY_FILE_LOCK_MS: '5000',
  DELIVERY_FILE_SWEEP_MS: '2000',
})
const simulatorArgs = ['--max-items', '200000', '--max-requests', '2000']
const ctx = {
  root: ROOT,
  env,
  ephemeral: true,
  addresses: {} as Record<string, string>,
  serviceEnv,
  serviceArgs: Object.fromEntries(
    ['segment-simulator', 'braze-simulator', 'heap-simulator', 'mparticle-simulator'].map((n) => [n, simulatorArgs]),
  ),
  built: new Set<string>(),
}

/** A fault event of a phase; progressAt: when the destination first held more of the send's rows after a restart. */
interface FaultEvent {
  what: string
  at: number
  restart?: boolean
  inFlight?: boolean
  progressAt?: number
}

const running = new Map<string, Running>()
const extra: Running[] = []
const expectedExits = new Set<Running>()
const unexpected: string[] = []

function watch(name: string, component: Running): void {
  void component.exited.then((reason) => {
    if (!expectedExits.has(component)) {
      unexpected.push(`${name}: ${reason.split('\n')[0]}`)
      log(`UNEXPECTED: ${name} stopped: ${reason}`)
    }
  })
}

function component(name: string): Component {
  const found = components.find((c) => c.name === name)
  if (found === undefined) throw new Error(`no component ${name} in scripts/components.ts`)
  return found
}

async function start(name: string): Promise<Running> {
  const started = await component(name).start(ctx)
  running.set(name, started)
  ctx.addresses[name] = started.address
  watch(name, started)
  return started
}

async function kill9(name: string): Promise<void> {
  const target = running.get(name)
  if (target?.pid === undefined) throw new Error(`${name} has no pid`)
  expectedExits.add(target)
  process.kill(target.pid, 'SIGKILL')
  await target.exited
}

async function stopComponent(target: Running): Promise<void> {
  expectedExits.add(target)
  await target.stop()
}

async function stopEverything(): Promise<void> {
  for (const replica of extra.splice(0)) await stopComponent(replica).catch(() => undefined)
  for (const [name, target] of [...running].reverse()) {
    await stopComponent(target).catch((err: unknown) => log(`${name}: ${(err as Error).message}`))
  }
  running.clear()
}

/**
 * A Look's JSON, whole or in two parts: the tail is streamed only once `gate` resolves, so the ingress (and the
 * send) cannot finish before it.
 */
type LookBody = string | { head: string; tail: string; gate: Promise<void> }

// The Looker side: one-time download URLs on 127.0.0.1 serving a Look's JSON.
const looks = new Map<string, LookBody>()
const lookServer = createServer((req, res) => {
  const body = looks.get(req.url ?? '')
  looks.delete(req.url ?? '')
  if (body === undefined) return void res.writeHead(404).end()
  res.writeHead(200, { 'content-type': 'application/json' })
  if (typeof body === 'string') return void res.end(body)
  res.write(body.head)
  void body.gate.then(() => res.end(body.tail))
})
lookServer.listen(0, '127.0.0.1')
await new Promise((resolve) => lookServer.once('listening', resolve))
const lookOrigin = `http://127.0.0.1:${(lookServer.address() as AddressInfo).port}`
env.LOOKER_HOSTS = lookOrigin
let planIds = randomInt(1_000_000)

/** The Look of a send; with `gate`, its rows from `headRows` on are streamed only once the gate resolves. */
function lookBody(
  d: Destination,
  prefix: string,
  rows: number,
  bad: ReadonlySet<number>,
  held?: { headRows: number; gate: Promise<void> },
): LookBody {
  const fields = JSON.stringify({ ...d.fields, table_calculations: [], pivots: [] })
  const data: string[] = []
  for (let i = 0; i < rows; i++) data.push(d.row(prefix, i, bad.has(i)))
  const start = `{"ran_at":"${new Date().toISOString()}","fields":${fields},"data":[`
  const end = '],"has_totals":false}'
  if (held === undefined || held.headRows <= 0 || held.headRows >= rows) return `${start}${data.join(',')}${end}`
  return {
    head: `${start}${data.slice(0, held.headRows).join(',')},`,
    tail: `${data.slice(held.headRows).join(',')}${end}`,
    gate: held.gate,
  }
}

interface LookerAnswer {
  success: boolean
  message: string
  send_id?: string
  rows?: { received: number; accepted: number; rejected: number }
  rejected_rows?: { row: number; reason: string }[]
}

/** The Looker execute call, retried while the ingress does not offer the action yet (a service re-registering). */
async function execute(d: Destination, body: LookBody): Promise<LookerAnswer> {
  const planId = ++planIds
  return waitFor(
    async () => {
      const path = `/downloads/${randomBytes(8).toString('hex')}`
      looks.set(path, body)
      const nonce = randomBytes(16).toString('hex')
      const res = await request(`${ctx.addresses.ingress}/actions/${d.action}/execute`, {
        method: 'POST',
        headers: {
          authorization: `Token token="${nonce}/${createHmac('sha512', secret).update(nonce).digest('hex')}"`,
          'content-type': 'application/json',
          'user-agent': 'LookerOutgoingWebhook/24.0.0',
        },
        body: JSON.stringify({
          type: 'query',
          scheduled_plan: {
            scheduled_plan_id: planId,
            title: 'chaos',
            type: 'Look',
            download_url: `${lookOrigin}${path}`,
          },
          data: {},
          form_params: d.form,
        }),
        headersTimeout: 600_000,
        bodyTimeout: 600_000,
      })
      const text = (await res.body.text()).trim()
      looks.delete(path)
      if (res.statusCode !== 200) throw new Error(`execute ${d.action}: HTTP ${res.statusCode} ${text.slice(0, 300)}`)
      const answer = (JSON.parse(text) as { looker: LookerAnswer }).looker
      if (answer.rows === undefined) throw new Error(`execute ${d.action}: ${answer.message}`)
      return answer
    },
    { timeoutMs: 60_000, intervalMs: 500, message: `the ingress accepting a ${d.action} send` },
  )
}

/** The DLQ records of a send, by row index (a row dead-lettered twice appears twice). */
async function deadLetters(name: DestinationName, prefix: string): Promise<number[]> {
  const records = await readTopicWithKcat(ctx.addresses.kafka!, `lookstream.dlq.${name}`)
  const pattern = new RegExp(`"${prefix}-(\\d+)[@"]`)
  const rows: number[] = []
  for (const record of records) {
    const match = pattern.exec(record.value ?? '')
    if (match) rows.push(Number(match[1]))
  }
  return rows
}

/** Progress changes per destination (epoch ms), sampled every 200 ms for the whole run. */
const changes = new Map<DestinationName, number[]>()
/** Samples of a destination's progress that failed (epoch ms), for the notes of a fault event judged late. */
const failedSamples = new Map<DestinationName, number[]>()
let monitoring = true
async function monitor(d: Destination): Promise<void> {
  let last: number | undefined
  const list: number[] = []
  const failed: number[] = []
  changes.set(d.name, list)
  failedSamples.set(d.name, failed)
  while (monitoring) {
    try {
      const value = await d.progress()
      if (last !== undefined && value !== last) list.push(now())
      last = value
    } catch {
      // The simulator or S3 busy: the next sample tells.
      failed.push(now())
    }
    await sleep(200)
  }
}

const firstChangeAfter = (name: DestinationName, t: number): number | undefined => changes.get(name)!.find((c) => c > t)

function lastChangeBefore(name: DestinationName, t: number): number {
  return changes
    .get(name)!
    .filter((c) => c <= t)
    .reduce((a, b) => Math.max(a, b), 0)
}

/** The ingress's record of a send (status, delivered, fileError): why a send did not complete. */
async function sendStatus(sendId: string | undefined): Promise<string[]> {
  if (sendId === undefined) return []
  try {
    const nonce = randomBytes(16).toString('hex')
    const res = await request(`${ctx.addresses.ingress}/sends/${encodeURIComponent(sendId)}`, {
      headers: { authorization: `Token token="${nonce}/${createHmac('sha512', secret).update(nonce).digest('hex')}"` },
    })
    const send = (await res.body.json()) as Record<string, unknown>
    const { status, delivered, deadLettered, fileError } = send
    return [`send ${JSON.stringify({ status, delivered, deadLettered, fileError })}`]
  } catch (err) {
    return [`send record unavailable: ${(err as Error).message}`]
  }
}

function longestStall(name: DestinationName, from: number, to: number): number {
  let previous = from
  let longest = 0
  for (const c of changes.get(name)!) {
    if (c <= from) continue
    if (c > to) break
    longest = Math.max(longest, c - previous)
    previous = c
  }
  return Math.round(longest)
}

function pick(random: () => number, count: number, rows: number): Set<number> {
  const out = new Set<number>()
  while (out.size < Math.min(count, rows)) out.add(Math.floor(random() * rows))
  return out
}

async function phase(fault: Fault, index: number, dests: Destination[], proxy: S3FaultProxy): Promise<Row[]> {
  const tag = `${fault.replace(/[^a-z]/g, '').slice(0, 6)}${randomBytes(3).toString('hex')}`
  // The quick run's replica phase sends three times the rows, so that the two replicas share a send of some length
  // (its Look waits for the replica to join: REPLICA_HEAD_SHARE). Its service-kill phase too, so that its kills
  // spread over the send (see LAST_KILL_SHARE below). And its outage phases: the outage starts once every send has
  // been accepted, and meanwhile the held latency (HOLD) still lets a service deliver 400 rows per 1.5 s, so a send
  // of 1,000 rows could be all delivered before the outage when the ingress was slow to answer the five executes
  // (about 4 s on a loaded machine), leaving no recovery to time. 3,000 rows leave about 11 s for that.
  const SEND_ROWS = QUICK && !['rates', 'bad-rows'].includes(fault) ? ROWS * 3 : ROWS
  // The last share of a send's rows a kill waits for: at least four rounds of requests (ROUND_ROWS each) are still to
  // be delivered then, so the kill lands while the send is in flight even if the requests in flight all return at
  // once and this process is scheduled late on a loaded machine (with two rounds to go, a restarted service can
  // deliver the rest between the progress check and the kill). A kill that waited for a later share could
  // come only after the last round (1,000 rows are 10 requests).
  const LAST_KILL_SHARE = Math.max(0.1, Math.min(0.9, 1 - (4 * ROUND_ROWS) / SEND_ROWS))
  log(`phase ${fault}: ${dests.length} destinations × ${SEND_ROWS} rows (prefix ${tag})`)
  for (const d of dests) {
    if (d.simulator === undefined) continue
    const base = ctx.addresses[d.simulator]!
    await admin(base, '/faults', 'PUT', LATENCY)
    await admin(base, '/reset', 'POST')
  }
  proxy.configure(LATENCY)
  if (fault === 'rates') {
    for (const d of dests) {
      if (d.simulator === undefined) continue
      await admin(ctx.addresses[d.simulator]!, '/faults', 'PUT', {
        ...LATENCY,
        seed: SEED + index,
        rates: [
          { rate: 0.2, type: 'status', status: 429, headers: { 'retry-after': '1' } },
          { rate: 0.1, type: 'status', status: 500 },
          { rate: 0.05, type: 'hang' },
        ],
      })
    }
    proxy.configure({
      ...LATENCY,
      seed: SEED + index,
      rates: [
        { rate: 0.2, type: 'status', status: 503 },
        { rate: 0.1, type: 'status', status: 500 },
        { rate: 0.05, type: 'hang' },
      ],
    })
  }

  if (OUTAGES.includes(fault) || fault === 'replica') {
    for (const d of dests) await setLatency(d, HOLD, proxy)
  }
  const rows: Row[] = []
  const startedAt = now()
  await Promise.all(
    dests.map(async (d, n) => {
      const dRandom = seededRandom(SEED + index * 7919 + n * 104_729)
      const prefix = `${tag}${n}`
      const bad =
        fault === 'bad-rows' ? pick(dRandom, Math.max(3, Math.ceil(SEND_ROWS / 500)), SEND_ROWS) : new Set<number>()
      const good = new Set<number>()
      for (let i = 0; i < SEND_ROWS; i++) if (!(d.badRows === 'ingress' && bad.has(i))) good.add(i)
      for (const i of bad) if (d.badRows === 'simulator') good.delete(i)
      if (d.badRows === 'simulator') {
        for (const i of bad) {
          await admin(ctx.addresses[d.simulator!]!, '/faults/rules', 'POST', {
            type: 'status',
            status: 400,
            body: { message: 'rejected: a known bad row' },
            bodyContains: d.needle(prefix, i),
          })
        }
      }
      const expectedDlq = d.badRows === 'simulator' ? bad : new Set<number>()
      const notes: string[] = []
      const row: Row = {
        destination: d.name,
        fault,
        rowsSent: SEND_ROWS,
        accepted: 0,
        delivered: 0,
        rawRedeliveries: 0,
        effectiveDuplicates: 0,
        deadLettered: 0,
        deadLetteredAsExpected: false,
        expectedDeadLetters: expectedDlq.size,
        badDelivered: 0,
        lost: 0,
        recoveryMs: null,
        deliveredDuringOutage: false,
        inFlightEvents: 0,
        faultEvents: 0,
        longestStallMs: 0,
        notes,
        misses: [],
      }
      rows.push(row)
      let completedAt: number | undefined = undefined

      const snapshot = async (): Promise<{ o: Observation; dlq: number[] }> => ({
        o: await d.observe(prefix, good, bad),
        dlq: await deadLetters(d.name, prefix),
      })
      const complete = (s: { o: Observation; dlq: number[] }) =>
        s.o.delivered >= good.size && s.dlq.length >= expectedDlq.size
      const progressAtLeast = (target: number) =>
        waitFor(async () => completedAt !== undefined || ((await d.delivered?.()) ?? 0) >= target, {
          timeoutMs: PHASE_TIMEOUT_MS,
          intervalMs: 20,
          message: `${d.name} progress ${target}`,
        })
      // A random moment of the send: a seeded share of its rows delivered (recurly-engage shows no rows until its
      // file: a seeded delay after the last restart instead).
      const moment = async (low: number, high: number) => {
        const share = low + dRandom() * (high - low)
        if (d.delivered !== undefined) await progressAtLeast(Math.floor(share * good.size))
        else await sleep(300 + share * 2000)
      }

      // inFlight: whether the event hit the send while it was in flight, when the destination's own count at that
      // moment says so (a kill while the simulator held fewer rows than the send's); otherwise the progress record
      // judges it (below).
      const events: FaultEvent[] = []
      // Replica phase: the Look's rows after the first REPLICA_HEAD_SHARE wait for the replica, however long it
      // takes to boot and join the group, so it always joins while the send is in flight.
      let replicaIn: () => void = () => undefined
      const replicaJoined = new Promise<void>((resolve) => (replicaIn = resolve))
      const faultDone = (async () => {
        if (fault === 'service-kill') {
          // Resolves once the restarted service has delivered a row more than when it was ready: the next kill waits
          // for it, so that it lands while the service delivers (not while it starts) and every recovery is timed.
          let recovered: Promise<void> | undefined
          for (let k = 0; k < KILLS; k++) {
            const span = LAST_KILL_SHARE - 0.05
            await moment(0.05 + (span * k) / KILLS, 0.05 + (span * (k + 1)) / KILLS)
            await recovered
            // How far the send was, as the simulator says, when the kill went: tells a kill after the last row from a
            // progress change the 200 ms monitor did not see.
            const seen = d.delivered === undefined ? undefined : await d.delivered().catch(() => undefined)
            events.push({
              what: `kill ${k + 1}${seen === undefined ? '' : ` at ${seen}/${good.size} rows`}`,
              at: now(),
              ...(seen === undefined ? {} : { inFlight: seen < good.size }),
            })
            await kill9(d.name)
            await start(d.name)
            const restart: FaultEvent = { what: `restart ${k + 1}`, at: now(), restart: true }
            events.push(restart)
            const atRestart = d.delivered === undefined ? undefined : await d.delivered().catch(() => undefined)
            recovered =
              atRestart === undefined
                ? undefined
                : progressAtLeast(atRestart + 1).then(
                    () => void (restart.progressAt = now()),
                    () => undefined,
                  )
          }
        } else if (fault === 'replica') {
          let replica: Running
          try {
            replica = await component(d.name).start(ctx)
          } finally {
            // The Look's remaining rows flow once the replica is in (or failed to start: the row then says so).
            replicaIn()
          }
          extra.push(replica)
          watch(`${d.name} replica`, replica)
          events.push({ what: 'replica joined', at: now() })
          await setLatency(d, LATENCY, proxy)
          await moment(0.4, 0.7)
          events.push({ what: 'replica left', at: now() })
          await stopComponent(replica)
          extra.splice(extra.indexOf(replica), 1)
        }
      })()

      const answer = await execute(
        d,
        lookBody(
          d,
          prefix,
          SEND_ROWS,
          bad,
          fault === 'replica'
            ? { headRows: Math.floor(SEND_ROWS * REPLICA_HEAD_SHARE), gate: replicaJoined }
            : undefined,
        ),
      )
      row.accepted = answer.rows?.accepted ?? 0
      if (d.badRows === 'ingress' && bad.size > 0) {
        const refused = new Set((answer.rejected_rows ?? []).map((r) => r.row - 1))
        const exact = refused.size === bad.size && [...bad].every((i) => refused.has(i))
        notes.push(
          `${refused.size} rows refused by the ingress (${exact ? 'exactly the bad rows' : 'NOT the bad rows'})`,
        )
        if (!exact) row.misses.push('the ingress refused other rows than the bad ones')
      }
      if (row.accepted !== good.size + (d.badRows === 'simulator' ? bad.size : 0)) {
        notes.push(`the ingress accepted ${row.accepted} rows: ${answer.message}`)
      }
      // The component faults (redis, broker) run once for every destination: see outage() below.
      phaseAnswered.push(d.name)

      const answeredAt = now()
      // Complete, or stalled: no progress and no fault event for STALL_MS (and no outage under way).
      const ended = await waitFor(
        async () => {
          const s = await snapshot()
          if (complete(s)) return { s }
          const quiet = Math.max(
            answeredAt,
            lastChangeBefore(d.name, now()),
            ...[...events, ...outageEvents].map((e) => e.at),
          )
          return !outageActive && now() - quiet > STALL_MS ? { stalledS: Math.round((now() - quiet) / 1000) } : false
        },
        { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 1000, message: `${d.name} delivering ${good.size} rows` },
      ).catch(() => ({ stalledS: undefined }))
      const waited = 's' in ended ? ended.s : undefined
      if (!('s' in ended)) {
        notes.push(
          ended.stalledS === undefined
            ? `not complete after ${PHASE_TIMEOUT_MS / 1000} s`
            : `stalled: no progress for ${ended.stalledS} s`,
        )
      }
      completedAt = now()
      if (fault === 'replica') await faultDone
      await faultDone
      await outageDone
      // Settled: two readings 1.5 s apart agree (late retries and re-deliveries included).
      let previous = ''
      const final = await waitFor(
        async () => {
          const s = await snapshot()
          const key = JSON.stringify(s)
          const same = key === previous
          previous = key
          return same ? s : false
        },
        { timeoutMs: 60_000, intervalMs: 1500, message: `${d.name} settled` },
      )
      row.delivered = final.o.delivered
      row.rawRedeliveries = final.o.rawRedeliveries
      row.effectiveDuplicates = final.o.effectiveDuplicates
      row.badDelivered = final.o.badDelivered
      row.deadLettered = final.dlq.length
      row.deadLetteredAsExpected =
        final.dlq.length === expectedDlq.size &&
        new Set(final.dlq).size === final.dlq.length &&
        final.dlq.every((i) => expectedDlq.has(i))
      row.lost = good.size - final.o.delivered
      if (final.o.files !== undefined) notes.push(`${final.o.files} file${final.o.files === 1 ? '' : 's'}`)
      const adopted = await adoptedSince(d)
      if (adopted > 0) notes.push(`${adopted} send${adopted === 1 ? '' : 's'} adopted after Redis lost its state`)
      // When the send was last seen progressing: a fault after it did not hit the send.
      const deliveredAt = lastChangeBefore(d.name, completedAt)
      const all = [...events, ...outageEvents].sort((x, y) => x.at - y.at)
      const inFlight = (e: (typeof all)[number]) => ('inFlight' in e ? e.inFlight : undefined) ?? e.at < deliveredAt
      const hits = all.filter((e) => !e.restart && inFlight(e))
      const after = all.filter((e) => !e.restart && !inFlight(e))
      if (all.length > 0) {
        const failed = failedSamples.get(d.name)!.filter((t) => t >= startedAt && t <= completedAt).length
        notes.push(
          `${hits.length} of ${hits.length + after.length} fault events while the send was in flight` +
            (after.length > 0
              ? ` (after it: ${after.map((e) => e.what).join(', ')}; ${failed} progress samples failed meanwhile)`
              : ''),
        )
      }
      let untimed = 0
      for (const r of all) {
        if (!r.restart || r.at >= deliveredAt) continue
        const next = r.progressAt ?? firstChangeAfter(d.name, r.at)
        // Killed again before it showed any progress (recurly-engage, whose kills follow its restarts by a delay): that
        // run of the service had no recovery to time, and the next restart's is timed instead.
        if (all.some((e) => !e.restart && e.at > r.at && (next === undefined || e.at < next))) {
          untimed += 1
          continue
        }
        const took = next === undefined ? Number.POSITIVE_INFINITY : Math.round(next - r.at)
        row.recoveryMs = Math.max(row.recoveryMs ?? 0, took)
      }
      if (untimed > 0)
        notes.push(
          `${untimed} restart${untimed === 1 ? '' : 's'} killed again before any progress (recovery not timed)`,
        )
      if (fault === 'broker' && row.recoveryMs === null && row.lost === 0 && hits.length > 0) {
        // The kill landed mid-send and the broker came back only after the last row: the service went on delivering
        // what it had fetched while the broker was down.
        row.deliveredDuringOutage = true
        notes.push('every row delivered while the broker was down (nothing left to resume)')
      }
      row.inFlightEvents = hits.length
      row.faultEvents = hits.length + after.length
      notes.push(`delivered in ${((deliveredAt - startedAt) / 1000).toFixed(1)} s`)
      if (waited === undefined) {
        notes.push(...(await sendStatus(answer.send_id)))
        if (process.env.CHAOS_DEBUG) {
          const metrics = await (await request(`${ctx.addresses[d.name]}/metrics`)).body.text()
          log(
            metrics
              .split('\n')
              .filter((l) => l.startsWith('lookstream_destination_file') || l.includes('error'))
              .join('\n'),
          )
        }
      }
      row.longestStallMs = longestStall(d.name, startedAt, completedAt)
      if (after.length > 0)
        row.misses.push(`${after.length} fault events after the send was delivered (not a test of it)`)
      if (row.lost !== 0) row.misses.push(`${row.lost} lost`)
      if (row.effectiveDuplicates !== 0) row.misses.push(`${row.effectiveDuplicates} effective duplicates`)
      if (!row.deadLetteredAsExpected) row.misses.push('the DLQ does not hold exactly the bad rows')
      if (row.badDelivered !== 0) row.misses.push(`${row.badDelivered} bad rows delivered`)
      if (OUTAGES.includes(fault) && (row.recoveryMs ?? 0) > RECOVERY_TARGET_MS) {
        row.misses.push(
          `delivery resumed ${row.recoveryMs} ms after the ${fault === 'broker' ? 'broker' : 'Redis'} return`,
        )
      }
      if (fault === 'service-kill' && unexpected.length > 0) row.notes.push(...unexpected)
      log(`${d.name} ${fault}: ${JSON.stringify(row)}`)
    }),
  )
  return rows
}

/** Sends a file destination rebuilt from its staging area since the last call (its metric; 0 for the others). */
const adoptedSeen = new Map<DestinationName, number>()
async function adoptedSince(d: Destination): Promise<number> {
  const address = ctx.addresses[d.name]
  if (address === undefined) return 0
  let text: string
  try {
    text = await (await request(`${address}/metrics`)).body.text()
  } catch {
    return 0
  }
  const total = text
    .split('\n')
    .filter((l) => l.startsWith('lookstream_destination_file_sends_adopted_total{'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
  // A restarted service counts from 0 again.
  const before = adoptedSeen.get(d.name) ?? 0
  adoptedSeen.set(d.name, total)
  return total >= before ? total - before : total
}

// Redis and broker outages hit every destination of a phase at once, once all sends were accepted.
let phaseAnswered: DestinationName[] = []
let outageDone: Promise<void> = Promise.resolve()
let outageActive = false
let outageEvents: FaultEvent[] = []

async function outage(fault: Fault, dests: Destination[], index: number, proxy: S3FaultProxy): Promise<void> {
  const count = dests.length
  if (!OUTAGES.includes(fault)) return
  await waitFor(() => phaseAnswered.length === count, {
    timeoutMs: 120_000,
    intervalMs: 20,
    message: 'every send accepted',
  })
  outageActive = true
  const random = seededRandom(SEED + index * 31)
  await sleep(random() * 300)
  // The held sends go on at the usual pace once the fault has started.
  const release = () => Promise.all(dests.map((d) => setLatency(d, LATENCY, proxy)))
  if (fault === 'redis' || fault === 'redis-lost') {
    log(`redis down for ${REDIS_DOWN_MS / 1000} s${fault === 'redis-lost' ? ', its data lost' : ''}`)
    outageEvents.push({ what: 'Redis down', at: now() })
    await stopComponent(running.get('redis')!)
    if (fault === 'redis-lost') {
      // What a Redis without persistence (or a lost disk) comes back with: nothing.
      rmSync(env.LOCAL_REDIS_DATA_DIR!, { recursive: true, force: true })
      mkdirSync(env.LOCAL_REDIS_DATA_DIR!)
    }
    await release()
    await sleep(REDIS_DOWN_MS)
    await start('redis')
    outageEvents.push({ what: 'Redis back', at: now(), restart: true })
  } else {
    log('kill -9 local-kafka')
    outageEvents.push({ what: 'broker killed', at: now() })
    await kill9('kafka')
    await release()
    await start('kafka')
    outageEvents.push({ what: 'broker back', at: now(), restart: true })
  }
  outageActive = false
  log(`${fault} back`)
}

function table(report: Report): string {
  const ms = (v: number | null) => (v === null ? '—' : Number.isFinite(v) ? `${(v / 1000).toFixed(1)} s` : 'never')
  const lines = [
    `Seed ${report.seed}; ${report.rows} rows per send; ${report.kills} kills; Redis down ${report.redisDownMs / 1000} s; load average ${report.loadAverage}; ${report.durationS} s.`,
    '',
    '| destination | fault | fault events in flight | rows sent | accepted by ingress | delivered | raw re-deliveries | effective duplicates | dead-lettered (expected) | lost | recovery | longest stall | targets | notes |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|',
    ...report.results.map(
      (r) =>
        `| ${r.destination} | ${r.fault} | ${r.faultEvents === 0 ? '—' : `${r.inFlightEvents}/${r.faultEvents}`} | ${r.rowsSent} | ${r.accepted} | ${r.delivered} | ${r.rawRedeliveries} | ${r.effectiveDuplicates} | ${r.deadLettered} (${r.expectedDeadLetters}, ${r.deadLetteredAsExpected ? 'exactly the bad rows' : 'NOT the bad rows'}) | ${r.lost} | ${ms(r.recoveryMs)} | ${ms(r.longestStallMs)} | ${r.misses.length === 0 ? 'met' : `MISSED: ${r.misses.join('; ')}`} | ${r.notes.join('; ')} |`,
    ),
    '',
  ]
  return lines.join('\n')
}

async function main(): Promise<number> {
  log(`chaos: seed ${SEED} (replay with --seed ${SEED}); data in ${dataDir}`)
  const started = now()
  const load = loadAverage()
  const names = new Set(SELECTED)
  const wanted = components
    .map((c) => c.name)
    .filter((name) => {
      if (['kafka', 'redis', 'ingress'].includes(name)) return true
      if (name === 's3') return names.has('recurly-engage')
      if (name.endsWith('-simulator')) return names.has(name.slice(0, -'-simulator'.length) as DestinationName)
      return names.has(name as DestinationName)
    })
  let proxy: S3FaultProxy | undefined
  const rows: Row[] = []
  try {
    for (const name of wanted) {
      if (name === 'recurly-engage') {
        proxy = await startS3FaultProxy(ctx.addresses.s3!)
        serviceEnv['recurly-engage']!.RECURLY_ENGAGE_S3_ENDPOINT = proxy.endpoint
      }
      const c = await start(name)
      log(`${name} ${c.address} (${c.detail})`)
      if (name === 'kafka') env.LOCAL_KAFKA_PORT = c.address.slice(c.address.lastIndexOf(':') + 1)
      if (name === 'redis') env.LOCAL_REDIS_PORT = String(new URL(c.address).port)
    }
    proxy ??= await startS3FaultProxy('http://127.0.0.1:9')
    const all = destinations({
      simulator: (name) => ctx.addresses[name]!,
      s3: s3Client(ctx.addresses.s3 ?? 'http://127.0.0.1:9', HARNESS_S3_CREDENTIALS),
      bucket: 'recurly-engage',
    })
    const dests = SELECTED.map((name) => all[name])
    const monitors = dests.map((d) => monitor(d))
    for (const [i, fault] of SELECTED_FAULTS.entries()) {
      phaseAnswered = []
      outageEvents = []
      outageDone = outage(fault, dests, i, proxy)
      rows.push(...(await phase(fault, i, dests, proxy)))
      await outageDone
    }
    monitoring = false
    await Promise.all(monitors)
  } finally {
    monitoring = false
    await stopEverything()
    await proxy?.close()
    lookServer.closeAllConnections()
    lookServer.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
  const report: Report = {
    seed: SEED,
    quick: QUICK,
    rows: ROWS,
    kills: KILLS,
    redisDownMs: REDIS_DOWN_MS,
    startedAt: new Date(started).toISOString(),
    loadAverage: `${load} → ${loadAverage()}`,
    durationS: Math.round((now() - started) / 1000),
    results: rows,
  }
  const md = table(report)
  mkdirSync(dirname(resolve(ROOT, args.out)), { recursive: true })
  writeFileSync(`${resolve(ROOT, args.out)}.json`, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(`${resolve(ROOT, args.out)}.md`, md)
  process.stdout.write(md)
  log(`written ${args.out}.json and ${args.out}.md; seed ${SEED}`)
  return rows.every((r) => r.misses.length === 0) ? 0 : 1
}

process.on('SIGINT', () => {
  void stopEverything().then(() => process.exit(130))
})
process.exitCode = await main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  return 2
})
