// Looker execute → ingress → local-kafka → destination service → simulator, for several destinations in one run:
//   node --conditions=@lookstream/source bench/destinations/pipeline.ts [--destinations segment,braze,mparticle]
//        [--rows 1000000] [--warmup 5000] [--rounds 1] [--replicas 1] [--env NAME=VALUE]… [--cpu-prof-dir DIR]
//        [--ingress-cpu-prof-dir DIR] [--service-node-arg ARG]…
// Each phase is one destination on its own fresh stack (local-kafka on disk, redis-server, the simulator in its own
// process, the ingress and the destination service, both run as their `pnpm start` runs them: compiled, with their
// start scripts' Node flags). With --rounds N the destinations alternate N times, so a machine whose load changes
// during the run weighs on every destination alike.
// Per phase: a warm-up send, then one --rows send from the execute POST to the last row accepted by the simulator:
// rows/s; every row accepted once (the simulator's accepted count equals the rows); the destination service's and
// the ingress's peak RSS (VmHWM, warm-up included) and the service's CPU seconds during the send; redis-server's
// CPU seconds and the commands it ran meanwhile (the ingress's and the service's; per command in the log line);
// the CPU seconds of the ingress, the simulator, local-kafka and this process (the Looker stub) during the send, and
// the ingress's until it answered the execute (the send itself, without the idle wait for the destination):
// everything runs on one machine, so where its CPU goes decides the rate once the machine is busy. A second table
// splits each send where the ingress answered: while it sends, and the drain of what the service has not delivered
// yet, each with the machine's idle cores, the cores the hypervisor stole and the cores the service kept busy
// (/proc/stat and /proc/<pid>/stat). A third puts each destination beside the Segment pipeline of the same run, per
// round and over all rounds (the sends' times added).
// Simulator limits are raised above the services' defaults where the service's own default is the lower one
// (Braze: 6,000 per 3 s against the service's 3,000; mParticle: 100,000 batches/s with the service's rate raised).
// braze-bulk is the braze service on a BRAZE_BULK connection (/users/track/bulk: 1,000 objects a request; its 50
// requests a second raised to 1,000, the simulator allowing 2,000).
// --replicas runs that many processes of each destination service (one consumer group; service CPU is theirs
// together, service peak RSS the highest of one). --env applies to every destination service; --service-node-arg
// adds a Node option after the services' start-script ones (so it overrides them, e.g. --max-semi-space-size=8);
// --cpu-prof-dir makes every service write a V8 CPU profile there; --ingress-cpu-prof-dir makes the ingress write
// one there (on its SIGTERM exit, one file per phase).
import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { createServer, type ServerResponse } from 'node:http'
import { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { spawnSimulators, type SimulatorName } from '@lookstream/simulators'
import { buildProject, readStartCommand, spawnService } from '@lookstream/testing'
import { startKafkaAndRedis, stopsFor } from '../e2e/identify-backlog.ts'
import { envPairs } from '../env-pairs.ts'
import { cpuSeconds, loadAverage, machineCpuSeconds, peakRssBytes } from '../ingress/proc-stats.ts'

const { values: args } = parseArgs({
  options: {
    destinations: { type: 'string', default: 'segment,braze,mparticle' },
    rows: { type: 'string', default: '1000000' },
    warmup: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '1' },
    replicas: { type: 'string', default: '1' },
    env: { type: 'string', multiple: true, default: [] },
    'cpu-prof-dir': { type: 'string' },
    'ingress-cpu-prof-dir': { type: 'string' },
    'service-node-arg': { type: 'string', multiple: true, default: [] },
  },
})
const ROWS = Number(args.rows)
const WARMUP_ROWS = Number(args.warmup)
const ROUNDS = Number(args.rounds)
const REPLICAS = Number(args.replicas)
if (!Number.isInteger(REPLICAS) || REPLICAS < 1) throw new Error('--replicas is a whole number of 1 or more')
const EXTRA_ENV: Record<string, string> = envPairs(args.env)
if (args['cpu-prof-dir'] !== undefined) {
  EXTRA_ENV.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${args['cpu-prof-dir']}`
}
const INGRESS_PROF_ARGS =
  args['ingress-cpu-prof-dir'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${args['ingress-cpu-prof-dir']}`]
const ROOT = new URL('../../', import.meta.url).pathname
const SECRET = randomBytes(32).toString('hex')

const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)
const now = () => performance.timeOrigin + performance.now()
const MiB = (bytes: number) => +(bytes / 1024 / 1024).toFixed(1)

interface LookField {
  name: string
  label: string
  view: string
  tags: string[]
  type: string
  measure?: boolean
}

/** One destination's part: its Look (rows of about the same size for every destination), action and settings. */
interface Spec {
  /** The service folder under services/ (default: the destination's name). */
  service?: string
  simulator: SimulatorName
  simulatorArgs: string[]
  /** Admin calls on the simulator before the send (limits). */
  limits?: { path: string; body: unknown }
  action: string
  form: Record<string, string>
  fields: { dimensions: LookField[]; measures: LookField[] }
  row(prefix: string, i: number): string
  env(simulatorUrl: string): Record<string, string>
}

const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'ES']
const dimension = (name: string, label: string, tags: string[]): LookField => ({
  name,
  label,
  view: name.slice(0, name.indexOf('.')),
  tags,
  type: 'string',
})
const measure = (name: string, label: string, tags: string[]): LookField => ({
  ...dimension(name, label, tags),
  measure: true,
  type: 'count',
})
const plan = (i: number) => (i % 3 === 0 ? 'annual' : 'monthly')

const SPECS: Record<string, Spec> = {
  segment: {
    simulator: 'segment',
    simulatorArgs: ['--segment-port', '0', '--no-rate-limits'],
    action: 'segment_identify',
    form: {},
    fields: {
      dimensions: [
        dimension('users.id', 'Users ID', ['user_id']),
        dimension('users.email', 'Users Email', ['email']),
        dimension('users.plan', 'Users Plan', []),
        dimension('users.country', 'Users Country', []),
      ],
      measures: [measure('orders.count', 'Orders Count', [])],
    },
    row: (prefix, i) =>
      `{"users.id":{"value":"${prefix}-${i}"},"users.email":{"value":"${prefix}-${i}@example.com"},` +
      `"users.plan":{"value":"${plan(i)}"},"users.country":{"value":"${COUNTRIES[i % 7]}"},` +
      `"orders.count":{"value":${i % 50}}}`,
    // The simulators CLI's default write key; the service's highest request rate.
    env: (url) => ({ SEGMENT_WRITE_KEY: 'segment-write-key', SEGMENT_API_URL: url, SEGMENT_RATE_LIMIT_RPS: '1000' }),
  },
  braze: {
    simulator: 'braze',
    simulatorArgs: ['--braze-port', '0', '--braze-api-key', 'bench-braze-api-key'],
    limits: { path: '/rate-limits', body: { requests: { limit: 6000, windowMs: 3000 } } },
    action: 'braze',
    form: { braze_update_existing_only: 'no' },
    fields: {
      dimensions: [
        dimension('users.id', 'Users ID', ['braze_id']),
        dimension('users.first_name', 'First Name', ['braze[first_name]']),
        dimension('users.plan', 'Plan', ['braze[plan]']),
        dimension('users.country', 'Country', ['braze[country]']),
      ],
      measures: [measure('orders.count', 'Orders', ['braze[orders]'])],
    },
    row: (prefix, i) =>
      `{"users.id":{"value":"${prefix}-${i}"},"users.first_name":{"value":"Name ${i}"},` +
      `"users.plan":{"value":"${plan(i)}"},"users.country":{"value":"${COUNTRIES[i % 7]}"},` +
      `"orders.count":{"value":${i % 50}}}`,
    env: (url) => ({
      BRAZE_API_KEY: 'bench-braze-api-key',
      BRAZE_REST_ENDPOINT: url,
      BRAZE_ALLOWED_HOSTS: new URL(url).host,
    }),
  },
  mparticle: {
    simulator: 'mparticle',
    simulatorArgs: [
      '--mparticle-port',
      '0',
      '--mparticle-key',
      'bench-mparticle-key',
      '--mparticle-secret',
      'bench-mparticle-secret',
    ],
    limits: { path: '/rate-limits', body: { batches: { limit: 100_000, windowMs: 1000 } } },
    action: 'mparticle',
    form: { data_type: 'user_data', environment: 'production', custom_event_type: 'other' },
    fields: {
      dimensions: [
        dimension('users.id', 'Users ID', ['mp_customer_id']),
        dimension('users.email', 'Users Email', ['mp_email']),
        dimension('users.plan', 'Users Plan', ['mp_user_attribute']),
        dimension('users.country', 'Users Country', ['mp_user_attribute']),
      ],
      measures: [measure('users.ltv', 'Users LTV', ['mp_user_attribute'])],
    },
    row: (prefix, i) =>
      `{"users.id":{"value":"${prefix}-${i}"},"users.email":{"value":"${prefix}-${i}@example.com"},` +
      `"users.plan":{"value":"${plan(i)}"},"users.country":{"value":"${COUNTRIES[i % 7]}"},` +
      `"users.ltv":{"value":${i % 997}}}`,
    env: (url) => ({
      MPARTICLE_API_KEY: 'bench-mparticle-key',
      MPARTICLE_API_SECRET: 'bench-mparticle-secret',
      MPARTICLE_API_URL: `${url}/v2`,
      MPARTICLE_ALLOWED_HOSTS: new URL(url).host,
      MPARTICLE_BATCHES_PER_SECOND: '100000',
    }),
  },
}

// The braze service on a connection with BRAZE_BULK: POST /users/track/bulk, up to 1,000 objects a request. Its
// default of 50 requests a second is raised to 1,000 (the simulator allows 2,000), as mParticle's rate is: at 50 a
// second the schedule, not the pipeline's CPU, sets the rate (bench/README.md, braze).
SPECS['braze-bulk'] = {
  ...SPECS.braze!,
  service: 'braze',
  limits: {
    path: '/rate-limits',
    body: { requests: { limit: 6000, windowMs: 3000 }, bulkRequests: { limit: 2000, windowMs: 1000 } },
  },
  env: (url) => ({ ...SPECS.braze!.env(url), BRAZE_BULK: 'true', BRAZE_BULK_REQUESTS_PER_SECOND: '1000' }),
}

/** The one-time download_url of a Look (json_detail_lite_stream), streamed as fast as the socket takes it. */
async function startLooks(spec: Spec): Promise<{
  origin: string
  serve(prefix: string, rows: number): string
  close(): Promise<void>
}> {
  const looks = new Map<string, { prefix: string; rows: number }>()
  const fields = JSON.stringify({ ...spec.fields, table_calculations: [], pivots: [] })
  const write = async (res: ServerResponse, chunk: string) => {
    if (!res.write(chunk)) await once(res, 'drain')
  }
  const server = createServer((req, res) => {
    const look = looks.get(req.url ?? '')
    looks.delete(req.url ?? '')
    if (look === undefined) return void res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'application/json' })
    void (async () => {
      await write(res, `{"ran_at":"${new Date().toISOString()}","fields":${fields},"data":[`)
      for (let next = 0; next < look.rows;) {
        let chunk = ''
        const until = Math.min(look.rows, next + 500)
        for (; next < until; next++)
          chunk += next === 0 ? spec.row(look.prefix, next) : `,${spec.row(look.prefix, next)}`
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
  destination: string
  round: number
  rows: number
  rowsPerSecond: number
  executeToLastAcceptedMs: number
  ingressAnsweredMs: number
  simulatorRequests: number
  simulatorAccepted: number
  servicePeakRssMiB: number
  ingressPeakRssMiB: number
  serviceCpuSeconds: number
  ingressCpuSeconds: number
  /** The ingress's CPU seconds from the execute POST to its answer (the send itself, without the idle tail). */
  ingressCpuToAnswerSeconds: number
  simulatorCpuSeconds: number
  kafkaCpuSeconds: number
  /** This process: the Looker stub serving the Look, and the polling of the simulator. */
  lookerStubCpuSeconds: number
  /** redis-server's CPU seconds and the commands it ran during the send (INFO commandstats). */
  redisCpuSeconds: number
  redisCalls: number
  redisCallsByCommand: Record<string, number>
  loadAverage: string
  /**
   * The send in two stretches: while the ingress sends (execute → its answer) and the drain after it (answer → last
   * accepted). Per stretch: its seconds, the machine's idle and stolen cores, and the cores the service kept busy.
   */
  stretches: { sending: Stretch; draining: Stretch }
}

interface Stretch {
  seconds: number
  idleCores: number
  /** Cores the hypervisor gave to something else meanwhile. */
  stealCores: number
  serviceCores: number
}

/** Idle, stolen and service cores between two readings taken `seconds` apart. */
function stretch(
  seconds: number,
  machine0: { idle: number; steal: number },
  machine1: { idle: number; steal: number },
  service0: number,
  service1: number,
): Stretch {
  return {
    seconds: +seconds.toFixed(1),
    idleCores: +((machine1.idle - machine0.idle) / seconds).toFixed(2),
    stealCores: +((machine1.steal - machine0.steal) / seconds).toFixed(2),
    serviceCores: +((service1 - service0) / seconds).toFixed(2),
  }
}

/** Calls per command from INFO commandstats (EVALSHA of a script counts once per call). */
async function redisCalls(url: string): Promise<Map<string, number>> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    const info = await client.info('commandstats')
    return new Map([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]))
  } finally {
    client.disconnect()
  }
}

function callsSince(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const calls: Record<string, number> = {}
  for (const [command, count] of after) {
    // The INFO call of this measurement is left out.
    const added = count - (before.get(command) ?? 0) - (command === 'info' ? 1 : 0)
    if (added > 0) calls[command] = added
  }
  return calls
}

async function phase(destination: string, round: number): Promise<PhaseResult> {
  const spec = SPECS[destination]
  if (spec === undefined) throw new Error(`unknown destination ${destination}; known: ${Object.keys(SPECS).join(', ')}`)
  const dataDir = mkdtempSync(join(tmpdir(), `bench-${destination}-`))
  const stops = stopsFor(dataDir)
  try {
    log(`${destination}: starting local-kafka, redis-server, simulator, Looker stub, ingress, ${destination} service`)
    const { kafka, redis } = await startKafkaAndRedis(dataDir, stops)
    const simulator = await spawnSimulators([...spec.simulatorArgs, '--max-items', '1000', '--max-requests', '1000'])
    stops.push(() => simulator.stop())
    const sim = simulator.urls[spec.simulator]!
    const admin = async <T>(path: string, method = 'GET', body?: unknown): Promise<T> => {
      const res = await request(`${sim}/__admin${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      })
      return (await res.body.json()) as T
    }
    if (spec.limits !== undefined) await admin(spec.limits.path, 'PUT', spec.limits.body)

    const looks = await startLooks(spec)
    stops.push(() => looks.close())
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
      { ...ingressStart.env, ...common, ACTION_HUB_SECRET: SECRET, LOOKER_HOSTS: looks.origin },
      { readyTimeoutMs: 60_000, compiled: true, nodeArgs: [...ingressStart.nodeArgs, ...INGRESS_PROF_ARGS] },
    )
    stops.push(() => ingress.stop('SIGTERM', 10_000))
    const serviceDir = join(ROOT, `services/${spec.service ?? destination}`)
    buildProject(serviceDir)
    const serviceStart = readStartCommand(serviceDir)
    const services: { pid: number }[] = []
    for (let replica = 0; replica < REPLICAS; replica++) {
      const service = await spawnService(
        serviceStart.entry,
        { ...serviceStart.env, ...common, ...spec.env(sim), ...EXTRA_ENV },
        { readyTimeoutMs: 60_000, compiled: true, nodeArgs: [...serviceStart.nodeArgs, ...args['service-node-arg']] },
      )
      stops.push(() => service.stop('SIGTERM', 20_000))
      services.push(service)
    }
    // Every replica's CPU seconds together; the highest peak RSS of one replica.
    const serviceCpu = () => services.reduce((sum, { pid }) => sum + cpuSeconds(pid), 0)
    const servicePeakRss = () => Math.max(...services.map(({ pid }) => peakRssBytes(pid)))

    const nonce = randomBytes(16).toString('hex')
    const authorization = `Token token="${nonce}/${createHmac('sha512', SECRET).update(nonce).digest('hex')}"`
    const execute = async (prefix: string, count: number, planId: number) => {
      const startedAt = now()
      const res = await request(`${ingress.url}/actions/${spec.action}/execute`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json', 'user-agent': 'LookerOutgoingWebhook/24.0.0' },
        body: JSON.stringify({
          type: 'query',
          scheduled_plan: { scheduled_plan_id: planId, type: 'Look', download_url: looks.serve(prefix, count) },
          data: {},
          form_params: spec.form,
        }),
        headersTimeout: 0,
        bodyTimeout: 0,
      })
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
    log(`${destination}: ${ROWS} rows`)
    const load0 = loadAverage()
    const cpu0 = serviceCpu()
    const ingressCpu0 = cpuSeconds(ingress.pid)
    const simulatorCpu0 = cpuSeconds(simulator.pid)
    const kafkaCpu0 = cpuSeconds(kafka.pid)
    const ownCpu0 = process.cpuUsage()
    const redisCpu0 = cpuSeconds(redis.pid)
    const redisCalls0 = await redisCalls(redis.url)
    const machine0 = machineCpuSeconds()
    const sent = await execute('tp', ROWS, 1)
    const ingressCpuAnswered = cpuSeconds(ingress.pid)
    const machineAnswered = machineCpuSeconds()
    const serviceCpuAnswered = serviceCpu()
    log(`${destination}: execute answered after ${Math.round(sent.answeredAt - sent.startedAt)} ms`)
    await waitAccepted(ROWS, 3_600_000)
    const drainedAt = now()
    const machineDrained = machineCpuSeconds()
    const serviceCpuDrained = serviceCpu()
    // The accepted ids are kept in acceptance order: the last one carries the time of the last acceptance.
    const last = await admin<{ ids: [string, number][] }>(`/ids?offset=${ROWS - 1}&limit=1`)
    const lastAccepted = last.ids[0]![1]
    const state = await admin<{ counters: { requests: number; accepted: number; acceptedIds: number } }>('/state')
    const result: PhaseResult = {
      destination,
      round,
      rows: ROWS,
      rowsPerSecond: Math.round(ROWS / ((lastAccepted - sent.startedAt) / 1000)),
      executeToLastAcceptedMs: Math.round(lastAccepted - sent.startedAt),
      ingressAnsweredMs: Math.round(sent.answeredAt - sent.startedAt),
      simulatorRequests: state.counters.requests,
      simulatorAccepted: state.counters.acceptedIds,
      servicePeakRssMiB: MiB(servicePeakRss()),
      ingressPeakRssMiB: MiB(peakRssBytes(ingress.pid)),
      serviceCpuSeconds: +(serviceCpu() - cpu0).toFixed(1),
      ingressCpuSeconds: +(cpuSeconds(ingress.pid) - ingressCpu0).toFixed(1),
      ingressCpuToAnswerSeconds: +(ingressCpuAnswered - ingressCpu0).toFixed(1),
      simulatorCpuSeconds: +(cpuSeconds(simulator.pid) - simulatorCpu0).toFixed(1),
      kafkaCpuSeconds: +(cpuSeconds(kafka.pid) - kafkaCpu0).toFixed(1),
      lookerStubCpuSeconds: 0,
      redisCpuSeconds: +(cpuSeconds(redis.pid) - redisCpu0).toFixed(1),
      redisCalls: 0,
      redisCallsByCommand: callsSince(redisCalls0, await redisCalls(redis.url)),
      loadAverage: `${load0} → ${loadAverage()}`,
      stretches: {
        sending: stretch(
          (sent.answeredAt - sent.startedAt) / 1000,
          machine0,
          machineAnswered,
          cpu0,
          serviceCpuAnswered,
        ),
        // Until the poll saw the last row accepted (at most one 100 ms poll after it).
        draining: stretch(
          (drainedAt - sent.answeredAt) / 1000,
          machineAnswered,
          machineDrained,
          serviceCpuAnswered,
          serviceCpuDrained,
        ),
      },
    }
    const ownCpu = process.cpuUsage(ownCpu0)
    result.lookerStubCpuSeconds = +((ownCpu.user + ownCpu.system) / 1e6).toFixed(1)
    result.redisCalls = Object.values(result.redisCallsByCommand).reduce((a, b) => a + b, 0)
    if (result.simulatorAccepted !== ROWS) {
      throw new Error(`${destination}: the simulator accepted ${result.simulatorAccepted} rows of ${ROWS}`)
    }
    log(JSON.stringify(result))
    return result
  } finally {
    await stops.stopAll()
  }
}

/**
 * Each destination against the Segment pipeline of the same run: per round (against that round's Segment phase) and
 * over all rounds (the sends' times added, so a round on a slower machine weighs as much as the time it took).
 * Nothing when the run has no segment phase.
 */
function againstSegment(results: readonly PhaseResult[]): string[] {
  const segment = results.filter((r) => r.destination === 'segment')
  if (segment.length === 0) return []
  const seconds = (rs: readonly PhaseResult[]) => rs.reduce((sum, r) => sum + r.executeToLastAcceptedMs, 0) / 1000
  const share = (a: number, b: number) => `${Math.round((a / b) * 1000) / 10} %`
  const lines = [
    "Against the Segment pipeline's rate: per round, and over all rounds (the sends' times added).",
    '',
    '| send | per round | over all rounds | seconds, all rounds |',
    '|---|---|---:|---:|',
  ]
  for (const destination of [...new Set(results.map((r) => r.destination))]) {
    const own = results.filter((r) => r.destination === destination)
    const perRound = own.map((r) => {
      const base = segment.find((s) => s.round === r.round)
      return base === undefined ? '–' : share(r.rowsPerSecond, base.rowsPerSecond)
    })
    const overAll = own.length === segment.length ? share(seconds(segment), seconds(own)) : '–'
    lines.push(`| ${destination} | ${perRound.join(' / ')} | ${overAll} | ${seconds(own).toFixed(1)} |`)
  }
  lines.push('')
  return lines
}

try {
  const destinations = args.destinations.split(',').filter(Boolean)
  const results: PhaseResult[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    // Every other round runs the destinations in reverse, so none always goes first.
    const order = round % 2 === 1 ? destinations : [...destinations].reverse()
    for (const destination of order) results.push(await phase(destination, round))
  }
  process.stdout.write(
    [
      '| send | round | rows | execute → last accepted | rows/s | requests | service peak RSS | ingress peak RSS | service CPU s | Redis CPU s | ingress CPU s | ingress CPU s to answer | simulator CPU s | local-kafka CPU s | Looker stub CPU s | Redis calls | load average |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      ...results.map(
        (r) =>
          `| ${r.destination} | ${r.round} | ${r.rows.toLocaleString('en')} | ${(r.executeToLastAcceptedMs / 1000).toFixed(1)} s | ${r.rowsPerSecond.toLocaleString('en')} | ${r.simulatorRequests.toLocaleString('en')} | ${r.servicePeakRssMiB} MiB | ${r.ingressPeakRssMiB} MiB | ${r.serviceCpuSeconds} | ${r.redisCpuSeconds} | ${r.ingressCpuSeconds} | ${r.ingressCpuToAnswerSeconds} | ${r.simulatorCpuSeconds} | ${r.kafkaCpuSeconds} | ${r.lookerStubCpuSeconds} | ${r.redisCalls.toLocaleString('en')} | ${r.loadAverage} |`,
      ),
      '',
      'While the ingress sends, and the drain after its answer: seconds, idle cores, cores stolen by the hypervisor,',
      'cores the service kept busy.',
      '',
      '| send | round | sending s | idle | stolen | service | draining s | idle | stolen | service |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...results.map(({ destination, round, stretches: { sending: a, draining: b } }) =>
        [
          destination,
          round,
          a.seconds,
          a.idleCores,
          a.stealCores,
          a.serviceCores,
          b.seconds,
          b.idleCores,
          b.stealCores,
          b.serviceCores,
        ]
          .join(' | ')
          .replace(/^/, '| ')
          .concat(' |'),
      ),
      '',
      ...againstSegment(results),
    ].join('\n'),
  )
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  process.exitCode = 1
}
