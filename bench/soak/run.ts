// The soak: one --rows-row Look sent to all five destinations at once through the whole pipeline as `npm start`
// runs it, every component's RSS and CPU sampled every second, every row checked at its destination.
//
//   node --conditions=@lookstream/source bench/soak/run.ts [--rows 5000000] [--out DIR] [--stall-minutes 10]
//
// scripts/start.ts runs as a child process (ephemeral ports, local-kafka's data in a temporary directory that is
// deleted at the end); its component lines give every address and PID. A Looker stub serves the generated Look
// (bench/soak/look.ts) and the five actions (segment_identify, braze, heap, mparticle, recurly_engage) are executed
// at once with the Action Hub token start.ts prints. The destination limits that would make the soak last hours
// are raised: the services' through their own variables (RAISED_ENV), the simulators' removed through their admin
// API. Written to --out (default a new directory under the system temp dir): samples.csv (one line per second)
// and summary.json; the tables go to stdout, progress to stderr. Exit code 1 when a row is lost or duplicated.
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { s3Client } from '@lookstream/testing'
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { flatness, markdownTable as table, memoryTable, SERVICES, type Flatness, type Sample } from './flatness.ts'
import { JOIN_KEY_LABEL, rowIndex, startSoakLooker } from './look.ts'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '5000000' },
    out: { type: 'string' },
    'stall-minutes': { type: 'string', default: '10' },
    'keep-file': { type: 'boolean', default: false },
  },
})
const ROWS = Number(args.rows)
if (!Number.isInteger(ROWS) || ROWS < 1) throw new Error(`--rows must be a positive integer, got ${args.rows}`)
const STALL_MS = Number(args['stall-minutes']) * 60_000
if (!(STALL_MS > 0)) throw new Error(`--stall-minutes must be a positive number, got ${args['stall-minutes']}`)
const ROOT = join(import.meta.dirname, '../..')
const OUT = args.out ?? mkdtempSync(join(tmpdir(), 'lookstream-soak-out-'))
mkdirSync(OUT, { recursive: true })

/** The services' own limits, raised for the soak (their defaults are the real APIs' limits). */
export const RAISED_ENV: Record<string, string> = {
  SEGMENT_RATE_LIMIT_RPS: '1000', // default 200 requests/s (the variable's maximum)
  BRAZE_RATE_LIMIT_REQUESTS: '1000000', // default 3,000 per BRAZE_RATE_LIMIT_WINDOW_SECONDS (3 s)
  HEAP_ITEMS_PER_MINUTE: '100000000', // default 15,000 users per minute
  HEAP_IDENTITY_ITEMS_PER_MINUTE: '100000000', // default 1,000
  MPARTICLE_BATCHES_PER_SECOND: '100000', // default 270
  SEND_DEADLINE_MS: String(4 * 3600_000), // ingress: default 15 min to read a Look
}

const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)
const now = () => performance.timeOrigin + performance.now()
const MiB = (bytes: number) => bytes / 1048576
const fmt = (n: number) => n.toLocaleString('en')
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')

interface Component {
  name: string
  address: string
  pid: number
}

/** A component line of scripts/start.ts: `<name>  <address>  (<detail with "pid N">)`. */
const COMPONENT_LINE = /^(\S+) +(\S+) {2}\((.*)\)$/

interface Destination {
  name: string
  action: string
  form: Record<string, string>
  /** The simulator component, or undefined for recurly-engage (a CSV in S3). */
  simulator?: string
}

const DESTINATIONS: Destination[] = [
  { name: 'segment', action: 'segment_identify', form: {}, simulator: 'segment-simulator' },
  {
    name: 'braze',
    action: 'braze',
    form: {
      braze_key: 'external_id',
      braze_segment: 'LOOKER_EXPORT',
      braze_update_existing_only: 'no',
      braze_null_values: 'skip',
    },
    simulator: 'braze-simulator',
  },
  {
    name: 'heap',
    action: 'heap',
    form: { property_type: 'user', heap_field: JOIN_KEY_LABEL, long_values: 'reject' },
    simulator: 'heap-simulator',
  },
  {
    name: 'mparticle',
    action: 'mparticle',
    form: { data_type: 'user_data', environment: 'production', custom_event_type: 'other' },
    simulator: 'mparticle-simulator',
  },
  { name: 'recurly-engage', action: 'recurly_engage', form: {} },
]

/** The local S3 bucket and upload prefix scripts/start.ts gives the recurly-engage service. */
const RECURLY_BUCKET = 'recurly-engage'
const RECURLY_PREFIX = 'ingest/'

interface SimulatorState {
  counters: {
    requests: number
    accepted: number
    acceptedIds: number
    rejected: number
    duplicates: number
    skipped: number
    rateLimited: number
  }
  rateLimits: Record<string, unknown>
  users?: number
}

interface Progress {
  /** Distinct rows delivered (by messageId, user or source_request_id; recurly: data rows of the CSV). */
  delivered: number
  /** Epoch ms of the last row's delivery, once every row is delivered. */
  doneAt?: number
  final?: Record<string, number | string>
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'lookstream-soak-'))
  const prefix = `soak${Date.now().toString(36)}`
  const looker = await startSoakLooker(prefix, ROWS)
  let child: ChildProcess | undefined
  let childExited: Promise<void> = Promise.resolve()
  const stopChild = async (): Promise<void> => {
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    log(`stopping scripts/start.ts (pid ${child.pid})`)
    process.kill(child.pid, 'SIGTERM')
    const killed = sleep(120_000, undefined, { ref: false }).then(() => 'timeout')
    if ((await Promise.race([childExited.then(() => 'exited'), killed])) === 'timeout') {
      log('scripts/start.ts did not stop within 120 s: SIGKILL')
      process.kill(child.pid, 'SIGKILL')
    }
  }
  // The first Ctrl-C during the send ends the sampling: what was delivered so far is checked and reported, then
  // everything stops. Before or after the send, or a second time: stop at once.
  let interrupted = false
  let sampling = false
  let stopSampling = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (sampling && !stopSampling) {
        stopSampling = true
        log(`${signal}: ending the send here; checking what was delivered (again to stop at once)`)
        return
      }
      if (interrupted) return
      interrupted = true
      log(`${signal}: stopping`)
      void stopChild().finally(() => {
        rmSync(dataDir, { recursive: true, force: true })
        process.exit(130)
      })
    })
  }

  try {
    // ---- start the pipeline as `npm start` does
    const env: Record<string, string | undefined> = {
      ...process.env,
      LOOKSTREAM_START_PORTS: 'ephemeral',
      LOCAL_KAFKA_DATA_DIR: join(dataDir, 'kafka'),
      // Redis's append-only file and the local S3 too: nothing of a run stays in the checkout's .data/.
      LOCAL_REDIS_DATA_DIR: join(dataDir, 'redis'),
      LOCAL_S3_DATA_DIR: join(dataDir, 's3'),
      LOOKER_HOSTS: looker.origin,
      ...RAISED_ENV,
      // The simulators keep every accepted id and profile (about 1.3 KB per row in the Braze simulator): room for
      // 5,000,000 rows beyond Node's default 4 GiB heap. The services set their own heap caps on their command
      // lines, which take precedence over NODE_OPTIONS.
      NODE_OPTIONS: [process.env.NODE_OPTIONS, '--max-old-space-size=12288'].filter(Boolean).join(' '),
    }
    // Everything starts here: nothing external.
    for (const name of ['KAFKA_BROKERS', 'REDIS_URL', 'LOOKSTREAM_COMPONENTS', 'RECURLY_ENGAGE_S3_BUCKET'])
      delete env[name]
    for (const name of Object.keys(env)) if (/_API_URL$|_REST_ENDPOINT$/.test(name)) delete env[name]
    log(`starting scripts/start.ts (data in ${dataDir})`)
    const started = spawn(process.execPath, ['--conditions=@lookstream/source', 'scripts/start.ts'], {
      cwd: ROOT,
      env,
      // Its own process group: a Ctrl-C here reaches only this script, which stops it with one SIGTERM.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = started
    childExited = new Promise((resolve) => started.once('exit', () => resolve()))
    const startLog = createWriteStream(join(OUT, 'start.log'))
    const components: Component[] = []
    let token: string | undefined
    let childDied: string | undefined
    const ready = new Promise<void>((resolve, reject) => {
      const tail: string[] = []
      createInterface({ input: started.stdout }).on('line', (line) => {
        // The Action Hub and viewer tokens are secrets: start.log keeps the lines without them.
        startLog.write(`${line.replace(/(Action Hub token: |viewer token: )[^\s)]+/g, '$1***')}\n`)
        tail.push(line)
        if (tail.length > 20) tail.shift()
        const component = COMPONENT_LINE.exec(line)
        const pid = component && /\bpid (\d+)\b/.exec(component[3]!)
        if (component && pid) components.push({ name: component[1]!, address: component[2]!, pid: Number(pid[1]) })
        token ??= /^Action Hub token: (\S+)$/.exec(line)?.[1]
        if (line.startsWith('lookstream ready:')) resolve()
      })
      createInterface({ input: started.stderr }).on('line', (line) => startLog.write(`stderr: ${line}\n`))
      started.once('exit', (code, signal) => {
        childDied = `scripts/start.ts exited (${signal ?? code})`
        reject(new Error(`${childDied} before it was ready; last output:\n  ${tail.join('\n  ')}`))
      })
    })
    await Promise.race([
      ready,
      sleep(600_000, undefined, { ref: false }).then(() =>
        Promise.reject(new Error('scripts/start.ts not ready after 10 min')),
      ),
    ])
    const byName = new Map(components.map((c) => [c.name, c]))
    const address = (name: string): string => {
      const c = byName.get(name)
      if (c === undefined) throw new Error(`scripts/start.ts printed no ${name} line`)
      return c.address
    }
    if (token === undefined) throw new Error('scripts/start.ts printed no Action Hub token')
    log(`ready: ${components.map((c) => `${c.name} pid ${c.pid}`).join(', ')}`)

    // ---- simulators: no limits
    const admin = async <T>(simulator: string, path: string, method = 'GET', body?: unknown): Promise<T> => {
      const res = await request(`${address(simulator)}/__admin${path}`, {
        method,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      })
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`${simulator} ${method} ${path}: ${res.statusCode} ${text}`)
      return JSON.parse(text) as T
    }
    const simulatorLimits: Record<string, Record<string, unknown>> = {}
    for (const { simulator } of DESTINATIONS) {
      if (simulator === undefined) continue
      const before = await admin<Record<string, unknown>>(simulator, '/rate-limits')
      await admin(simulator, '/rate-limits', 'PUT', Object.fromEntries(Object.keys(before).map((k) => [k, null])))
      simulatorLimits[simulator] = before
    }
    log(`simulator limits removed (were ${JSON.stringify(simulatorLimits)})`)

    const s3 = s3Client(address('s3'))
    const listCsv = async (): Promise<Map<string, number>> => {
      const keys = new Map<string, number>()
      let token: string | undefined
      do {
        const page = await s3.send(
          new ListObjectsV2Command({ Bucket: RECURLY_BUCKET, Prefix: RECURLY_PREFIX, ContinuationToken: token }),
        )
        for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.set(o.Key, o.Size ?? 0)
        token = page.NextContinuationToken
      } while (token !== undefined)
      return keys
    }
    const csvBefore = new Set((await listCsv()).keys())

    // ---- sampling: every component's RSS and CPU each second, with each destination's progress
    const samples = new Map<string, Sample[]>(components.map((c) => [c.name, []]))
    const cpuTicks = (pid: number) => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      return Number(fields[11]) + Number(fields[12])
    }
    const rss = (pid: number) =>
      Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024
    const lastTicks = new Map(components.map((c) => [c.name, cpuTicks(c.pid)]))
    const firstTicks = new Map(lastTicks)
    let lastSampleAt = now()
    const progress = new Map<string, Progress>(DESTINATIONS.map((d) => [d.name, { delivered: 0 }]))
    const csv = createWriteStream(join(OUT, 'samples.csv'))
    csv.write(
      [
        'time',
        'elapsed_s',
        'load1',
        ...components.flatMap((c) => [`${c.name}_rss_mib`, `${c.name}_cpu_pct`]),
        ...DESTINATIONS.map((d) => `${d.name}_delivered`),
      ].join(',') + '\n',
    )

    const executeAt = now()
    const answers = new Map<string, number>()
    log(`executing the ${fmt(ROWS)}-row Look to ${DESTINATIONS.map((d) => d.action).join(', ')}`)
    const executions = DESTINATIONS.map(async (d, i) => {
      const res = await request(`${address('ingress')}/actions/${d.action}/execute`, {
        method: 'POST',
        headers: {
          authorization: `Token token="${token}"`,
          'content-type': 'application/json',
          'user-agent': 'LookerOutgoingWebhook/24.0.0',
        },
        body: JSON.stringify({
          type: 'query',
          scheduled_plan: { scheduled_plan_id: 9000 + i, type: 'Look', download_url: looker.downloadUrl() },
          data: {},
          form_params: d.form,
        }),
        headersTimeout: 0,
        bodyTimeout: 0,
      })
      const text = await res.body.text()
      const answer = JSON.parse(text.trim()) as { looker?: { success?: boolean; message?: string } }
      if (answer.looker?.success !== true) throw new Error(`${d.action}: execute failed: ${res.statusCode} ${text}`)
      answers.set(d.name, now())
      log(`${d.action}: execute answered after ${((now() - executeAt) / 1000).toFixed(1)} s`)
    })
    let executeError: Error | undefined
    for (const e of executions)
      e.catch((err: unknown) => void (executeError ??= err instanceof Error ? err : new Error(String(err))))

    const pollSimulator = async (d: Destination): Promise<void> => {
      const state = await admin<SimulatorState>(d.simulator!, '/state')
      // Heap keeps user properties per user, not by id: its user count is the distinct rows.
      const distinct = d.name === 'heap' ? (state.users ?? 0) : state.counters.acceptedIds
      const p = progress.get(d.name)!
      p.delivered = distinct
      if (distinct >= ROWS && p.doneAt === undefined) {
        p.doneAt = now()
        if (d.name !== 'heap') {
          // Accepted ids are kept in acceptance order: the last one carries the last acceptance's time.
          const last = await admin<{ ids: [string, number][] }>(d.simulator!, `/ids?offset=${distinct - 1}&limit=1`)
          p.doneAt = last.ids[0]?.[1] ?? p.doneAt
        }
      }
    }
    let csvKey: string | undefined
    let csvSize = -1
    // New CSVs of other sends (another copy of the pipeline started from this checkout shares its .data/s3).
    const otherCsv = new Set<string>()
    const pollRecurly = async (): Promise<void> => {
      const p = progress.get('recurly-engage')!
      if (p.doneAt !== undefined) return
      for (const [key, size] of await listCsv()) {
        if (csvBefore.has(key) || otherCsv.has(key)) continue
        // This send's file: its first data row is a user of this Look (`<prefix>-<i>`).
        const head = await s3.send(new GetObjectCommand({ Bucket: RECURLY_BUCKET, Key: key, Range: 'bytes=0-4095' }))
        const lines = (await head.Body!.transformToString()).split('\n')
        if (lines.length < 3) continue // not written that far yet
        if (!lines[1]!.replace(/^"/, '').startsWith(`${prefix}-`)) {
          otherCsv.add(key)
          continue
        }
        csvKey = key
        csvSize = size
        p.doneAt = now()
        log(`recurly-engage: ${key} is visible (${MiB(size).toFixed(1)} MiB)`)
        return
      }
    }

    let lastChange = now()
    let lastTotal = -1
    let lastPrint = 0
    sampling = true
    const sampler = (async () => {
      while (!stopSampling) {
        const tick = now()
        // Clock ticks are 1/100 s: ticks per second of wall time is the CPU percentage.
        const seconds = (tick - lastSampleAt) / 1000
        lastSampleAt = tick
        const elapsed = (tick - executeAt) / 1000
        const row: (string | number)[] = [new Date().toISOString(), elapsed.toFixed(1), loadavg()[0]!.toFixed(2)]
        for (const c of components) {
          let bytes: number
          let ticks: number
          try {
            bytes = rss(c.pid)
            ticks = cpuTicks(c.pid)
          } catch {
            throw new Error(`${c.name} (pid ${c.pid}) is gone${childDied ? `: ${childDied}` : ''}`)
          }
          samples.get(c.name)!.push({ t: elapsed, rssBytes: bytes })
          row.push(MiB(bytes).toFixed(1), ((ticks - lastTicks.get(c.name)!) / seconds).toFixed(0))
          lastTicks.set(c.name, ticks)
        }
        await Promise.all(DESTINATIONS.map((d) => (d.simulator === undefined ? pollRecurly() : pollSimulator(d))))
        row.push(...DESTINATIONS.map((d) => progress.get(d.name)!.delivered))
        csv.write(row.join(',') + '\n')
        const total = [...progress.values()].reduce((sum, p) => sum + p.delivered + (p.doneAt ? 1 : 0), 0)
        if (total !== lastTotal) {
          lastTotal = total
          lastChange = tick
        }
        if (tick - lastPrint >= 10_000) {
          lastPrint = tick
          const services = SERVICES.map((s) => `${s} ${MiB(rss(byName.get(s)!.pid)).toFixed(0)}`).join(' ')
          log(
            `${elapsed.toFixed(0)} s, load ${load()}: ` +
              DESTINATIONS.map((d) => {
                const p = progress.get(d.name)!
                if (d.simulator === undefined) return `${d.name} ${p.doneAt ? 'file visible' : 'no file yet'}`
                return `${d.name} ${fmt(p.delivered)} (${((p.delivered / ROWS) * 100).toFixed(1)} %)`
              }).join(', ') +
              `; RSS MiB: ${services}`,
          )
        }
        if ([...progress.values()].every((p) => p.doneAt !== undefined)) return
        if (executeError !== undefined) throw executeError
        if (tick - lastChange > STALL_MS) {
          log(`no progress for ${args['stall-minutes']} min: stopping with what was delivered`)
          return
        }
        await sleep(Math.max(0, 1000 - (now() - tick)))
      }
    })()
    await sampler
    sampling = false
    const runSeconds = (now() - executeAt) / 1000
    const loadAfter = load()
    const cpuSeconds = new Map(
      components.map((c) => [c.name, (lastTicks.get(c.name)! - firstTicks.get(c.name)!) / 100]),
    )
    csv.end()

    // ---- verify every destination
    const results: Record<string, number | string>[] = []
    for (const d of DESTINATIONS) {
      const p = progress.get(d.name)!
      const base = {
        destination: d.name,
        'execute → last row (s)': p.doneAt === undefined ? 'not finished' : ((p.doneAt - executeAt) / 1000).toFixed(1),
        'rows/s': p.doneAt === undefined ? '-' : Math.round(ROWS / ((p.doneAt - executeAt) / 1000)),
      }
      if (d.simulator !== undefined) {
        const state = await admin<SimulatorState>(d.simulator, '/state')
        const c = state.counters
        const distinct = d.name === 'heap' ? (state.users ?? 0) : c.acceptedIds
        results.push({
          ...base,
          delivered: distinct,
          lost: ROWS - distinct,
          // Accepted more than once (state destinations without an idempotency key apply it again).
          'delivered twice': c.accepted - distinct,
          // Sent again and refused by the simulator's own dedupe (Segment messageId, mParticle source_request_id).
          'resent, deduped at simulator': c.duplicates,
          'rejected/skipped': c.rejected + c.skipped,
          requests: c.requests,
          '429s': c.rateLimited,
        })
        continue
      }
      let lines = 0
      let dataRows = 0
      let twice = 0
      let foreign = 0
      let header = ''
      if (csvKey !== undefined) {
        // s3rver writes an object's file in place: read until the size it lists stops changing.
        for (let previous = -2; previous !== csvSize;) {
          previous = csvSize
          await sleep(3000)
          const listed = (await listCsv()).get(csvKey)
          csvSize = listed ?? csvSize
        }
        const seen = new Uint8Array(ROWS)
        const body = (await s3.send(new GetObjectCommand({ Bucket: RECURLY_BUCKET, Key: csvKey })))
          .Body as AsyncIterable<Buffer>
        const lineReader = createInterface({ input: Readable.from(body), crlfDelay: Infinity })
        for await (const line of lineReader) {
          if (lines++ === 0) {
            header = line
            continue
          }
          if (line === '') continue
          dataRows++
          const first = line.slice(0, line.indexOf(',') < 0 ? line.length : line.indexOf(','))
          const index = rowIndex(prefix, first.replace(/^"|"$/g, ''))
          if (index === undefined || index >= ROWS) foreign++
          else if (seen[index] === 1) twice++
          else seen[index] = 1
        }
        if (!args['keep-file']) await s3.send(new DeleteObjectCommand({ Bucket: RECURLY_BUCKET, Key: csvKey }))
      }
      const distinct = dataRows - twice - foreign
      results.push({
        ...base,
        delivered: distinct,
        lost: ROWS - distinct,
        'delivered twice': twice,
        'resent, deduped at simulator': '-',
        'rejected/skipped': foreign,
        requests: '-',
        '429s': '-',
        csv:
          csvKey === undefined ? 'no file' : `${csvKey}: header "${header.slice(0, 60)}", ${fmt(dataRows)} data rows`,
      })
    }
    s3.destroy()
    await stopChild()
    await looker.close()

    // ---- memory: flat or not
    const memory = components.map((c) => {
      const f: Flatness = flatness(samples.get(c.name)!)
      return {
        component: c.name,
        service: SERVICES.includes(c.name),
        f,
        cpuSeconds: cpuSeconds.get(c.name)!,
      }
    })
    const lost = results.some((r) => r.lost !== 0 || r['delivered twice'] !== 0)
    const summary = {
      rows: ROWS,
      date: new Date().toISOString(),
      runSeconds: +runSeconds.toFixed(1),
      // Ended by Ctrl-C or a stall before every row arrived: "lost" then counts rows not delivered yet.
      finished: [...progress.values()].every((p) => p.doneAt !== undefined),
      loadAverage: { before: loadBefore, after: loadAfter },
      raisedEnv: RAISED_ENV,
      simulatorLimitsRemoved: simulatorLimits,
      executeAnsweredSeconds: Object.fromEntries(
        [...answers].map(([name, at]) => [name, +((at - executeAt) / 1000).toFixed(1)]),
      ),
      destinations: results,
      memory: memory.map((m) => ({
        component: m.component,
        service: m.service,
        peakMiB: +MiB(m.f.peakBytes).toFixed(1),
        atMiB: m.f.at.map((b) => +MiB(b).toFixed(1)),
        quartileMaxMiB: m.f.quartileMax.map((b) => +MiB(b).toFixed(1)),
        growth: +m.f.growth.toFixed(4),
        flat: m.f.flat,
        cpuSeconds: m.cpuSeconds,
      })),
    }
    writeFileSync(join(OUT, 'summary.json'), JSON.stringify(summary, null, 2) + '\n')
    process.stdout.write(
      [
        `soak: ${fmt(ROWS)} rows to ${DESTINATIONS.length} destinations at once, ${runSeconds.toFixed(0)} s, load ${loadBefore} → ${loadAfter}`,
        ...(summary.finished ? [] : ['ENDED EARLY (Ctrl-C or no progress): "lost" counts the rows not delivered yet']),
        '',
        table(results),
        '',
        memoryTable(memory),
        '',
        `samples: ${join(OUT, 'samples.csv')}; summary: ${join(OUT, 'summary.json')}`,
        '',
      ].join('\n'),
    )
    if (lost) process.exitCode = 1
  } finally {
    await stopChild()
    await looker.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

const loadBefore = load()
try {
  await main()
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  process.exitCode = 1
}
