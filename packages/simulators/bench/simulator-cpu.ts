// CPU seconds the Braze and mParticle simulators spend on a send, each in its own process (the CLI, as `npm start`
// and the destination pipeline benchmark run it), with items shaped as the braze and mparticle services send them:
// Braze /users/track with 75 attributes objects per request (a new external_id per row, `_update_existing_only`
// false, the export label `add` operation, four attributes), mParticle /v2/bulkevents with 100 batches per request
// (customer_id and email, three user attributes, a unique source_request_id). The client builds every body before
// the send, so its own work is not counted; only the simulator process's CPU (user + system, /proc) is.
// With --compare DIR (another checkout's packages/simulators) each round runs both, alternating, so the two are
// measured side by side under the same load.
// Run: node --conditions=@lookstream/source packages/simulators/bench/simulator-cpu.ts [--rows 200000]
//        [--rounds 2] [--destinations braze,mparticle] [--connections 4] [--compare DIR]
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '200000' },
    warmup: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '2' },
    destinations: { type: 'string', default: 'braze,mparticle' },
    connections: { type: 'string', default: '4' },
    compare: { type: 'string' },
  },
})
const ROWS = Number(args.rows)
const WARMUP = Number(args.warmup)
const ROUNDS = Number(args.rounds)
const CONNECTIONS = Number(args.connections)
const DESTINATIONS = args.destinations.split(',') as Destination[]

type Destination = 'braze' | 'mparticle'

interface Version {
  label: string
  cli: string
}

const versions: Version[] = [{ label: 'this tree', cli: fileURLToPath(new URL('../src/cli.ts', import.meta.url)) }]
if (args.compare !== undefined) versions.push({ label: args.compare, cli: resolve(args.compare, 'src/cli.ts') })

const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN']
const plan = (i: number): string => (i % 3 === 0 ? 'annual' : 'monthly')

interface Spec {
  args: string[]
  path: string
  authorization: string
  perRequest: number
  status: number
  body(prefix: string, from: number, to: number): string
}

const SPECS: Record<Destination, Spec> = {
  braze: {
    args: ['--braze-port', '0', '--braze-api-key', 'bench-braze-api-key'],
    path: '/users/track',
    authorization: 'Bearer bench-braze-api-key',
    perRequest: 75,
    status: 201,
    body: (prefix, from, to) => {
      const attributes = []
      for (let i = from; i < to; i++) {
        attributes.push({
          external_id: `${prefix}-${i}`,
          _update_existing_only: false,
          looker_export: { add: ['LOOKER_EXPORT'] },
          first_name: `Name ${i}`,
          plan: plan(i),
          country: COUNTRIES[i % 7],
          orders: i % 50,
        })
      }
      return JSON.stringify({ attributes })
    },
  },
  mparticle: {
    args: ['--mparticle-port', '0', '--mparticle-key', 'bench-key', '--mparticle-secret', 'bench-secret'],
    path: '/v2/bulkevents',
    authorization: `Basic ${Buffer.from('bench-key:bench-secret').toString('base64')}`,
    perRequest: 100,
    status: 202,
    body: (prefix, from, to) => {
      const batches = []
      for (let i = from; i < to; i++) {
        batches.push({
          environment: 'production',
          schema_version: 2,
          source_request_id: randomUUID(),
          user_identities: { customer_id: `${prefix}-${i}`, email: `${prefix}-${i}@example.com` },
          user_attributes: { plan: plan(i), country: COUNTRIES[i % 7], ltv: i % 997 },
          events: [],
        })
      }
      return JSON.stringify(batches)
    },
  },
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Peak resident set size (VmHWM) in MiB. */
function peakRssMiB(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`)
  return Math.round(Number(match[1]) / 1024)
}

function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
}

async function startCli(cli: string, cliArgs: string[]): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@lookstream/source', cli, ...cliArgs, '--no-rate-limits', '--max-items', '1000'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const exited = new Promise<void>((done) => child.once('exit', () => done()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  const url = await new Promise<string>((done, fail) => {
    child.once('exit', (code) => fail(new Error(`simulators exited with ${code} before they were ready`)))
    let found: string | undefined
    createInterface({ input: child.stdout }).on('line', (line) => {
      found ??= /^\w+ simulator listening on (\S+)$/.exec(line)?.[1]
      if (line === 'simulators ready' && found !== undefined) done(found)
    })
  })
  return { url, pid: child.pid as number, stop }
}

async function send(pool: Pool, spec: Spec, bodies: string[]): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++] as string
        const res = await pool.request({
          method: 'POST',
          path: spec.path,
          headers: { authorization: spec.authorization, 'content-type': 'application/json' },
          body,
        })
        const text = await res.body.text()
        if (res.statusCode !== spec.status) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
      }
    }),
  )
}

function bodiesFor(spec: Spec, prefix: string, rows: number): string[] {
  const bodies: string[] = []
  for (let from = 0; from < rows; from += spec.perRequest) {
    bodies.push(spec.body(prefix, from, Math.min(rows, from + spec.perRequest)))
  }
  return bodies
}

interface Result {
  destination: Destination
  version: string
  round: number
  cpuSeconds: number
  peakRssMiB: number
  requests: number
  load: string
}

async function measure(destination: Destination, version: Version, round: number): Promise<Result> {
  const spec = SPECS[destination]
  const warmup = bodiesFor(spec, `wu${round}`, WARMUP)
  const bodies = bodiesFor(spec, `tp${round}`, ROWS)
  const simulator = await startCli(version.cli, spec.args)
  const pool = new Pool(simulator.url, { connections: CONNECTIONS, pipelining: 1 })
  try {
    await send(pool, spec, warmup)
    const reset = await pool.request({ method: 'POST', path: '/__admin/reset' })
    await reset.body.dump()
    const load = loadAverage()
    const cpu0 = cpuSeconds(simulator.pid)
    await send(pool, spec, bodies)
    const cpu = cpuSeconds(simulator.pid) - cpu0
    const res = await pool.request({ method: 'GET', path: '/__admin/state' })
    const state = (await res.body.json()) as { counters: { acceptedIds: number } }
    if (state.counters.acceptedIds !== ROWS) throw new Error(`accepted ${state.counters.acceptedIds} of ${ROWS}`)
    return {
      destination,
      version: version.label,
      round,
      cpuSeconds: +cpu.toFixed(2),
      peakRssMiB: peakRssMiB(simulator.pid),
      requests: bodies.length,
      load: `${load} → ${loadAverage()}`,
    }
  } finally {
    await pool.close()
    await simulator.stop()
  }
}

const results: Result[] = []
for (let round = 1; round <= ROUNDS; round++) {
  // Alternate which version goes first so a change in load does not favour one.
  const order = round % 2 === 1 ? versions : [...versions].reverse()
  for (const destination of DESTINATIONS) {
    for (const version of order) {
      const result = await measure(destination, version, round)
      process.stderr.write(`${JSON.stringify(result)}\n`)
      results.push(result)
    }
  }
}
const lines = [
  `\n${ROWS.toLocaleString('en')} rows per send, ${CONNECTIONS} connections\n`,
  '| simulator | code | round | requests | simulator CPU s | µs per row | simulator peak RSS | load average |',
  '|---|---|---:|---:|---:|---:|---:|---|',
]
for (const r of results) {
  const perRow = ((r.cpuSeconds / ROWS) * 1e6).toFixed(1)
  lines.push(
    `| ${r.destination} | ${r.version} | ${r.round} | ${r.requests.toLocaleString('en')} | ${r.cpuSeconds} | ${perRow} | ${r.peakRssMiB} MiB | ${r.load} |`,
  )
}
process.stdout.write(`${lines.join('\n')}\n`)
