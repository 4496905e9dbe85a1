import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { freePort, spawnService, waitFor, type SpawnedService } from '@lookstream/testing'
import { join } from 'node:path'
import { ROOT, SIMULATORS_ENTRY, services } from '../deploy/services.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { identifyLook } from './support/looks.ts'
import { startPipeline, waitForAccepted, type Pipeline } from './support/pipeline.ts'
import { startPrometheus, type Prometheus, type TargetMetadata } from './support/prometheus.ts'

// Every Grafana query and alert expression in deploy/ against a live Prometheus scraping every service of
// deploy/services.ts as a process (local-kafka, redis-server; the ingress and segment service of the pipeline
// with the Segment simulator, every other destination against the simulators CLI with its example settings).

const JOB = 'lookstream'
const ALERTS_FILE = fileURLToPath(new URL('../deploy/prometheus/alerts.yml', import.meta.url))
const DASHBOARDS_TS = new URL('../deploy/grafana/dashboards.ts', import.meta.url).href
const DASHBOARD_JSON_DIR = new URL('../deploy/grafana/dashboards/', import.meta.url)

interface DashboardSource {
  uid: string
  title: string
  variables?: { name: string; label: string; metric: string }[]
  panels: { title: string; exprs: { expr: string }[] }[]
}

interface Query {
  /** Where it comes from, for failure messages. */
  where: string
  expr: string
}

/** The `expr:` values of a Prometheus rule file: inline (plain or quoted) or block scalars (`|`, `>`). */
function alertExprs(yaml: string): Query[] {
  const lines = yaml.split('\n')
  const out: Query[] = []
  let alert = '?'
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const name = /^\s*-?\s*(?:alert|record):\s*(.+?)\s*$/.exec(line)
    if (name) alert = name[1]!
    const match = /^(\s*)(?:-\s+)?expr:\s*(.*?)\s*$/.exec(line)
    if (!match) continue
    const indent = match[1]!.length
    const value = match[2]!
    let expr: string
    if (/^[|>][-+]?$/.test(value)) {
      const block: string[] = []
      while (i + 1 < lines.length) {
        const next = lines[i + 1]!
        if (next.trim() !== '' && next.length - next.trimStart().length <= indent) break
        block.push(next.trim())
        i++
      }
      expr = block.filter((l) => l !== '').join(value.startsWith('>') ? ' ' : '\n')
    } else if (value.startsWith("'")) {
      expr = value.slice(1, -1).replaceAll("''", "'")
    } else if (value.startsWith('"')) {
      expr = JSON.parse(value) as string
    } else {
      expr = value.replace(/\s+#.*$/, '')
    }
    out.push({ where: `alert ${alert}`, expr })
  }
  return out
}

/** Grafana's range variables, and the dashboard's own variables as "All" (`.+`), for a plain /api/v1/query. */
function forPrometheus(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '1m')
    .replace(/\$([a-z_]+)/g, '.+')
}

/** lookstream's own metrics and Node's default ones (event loop, heap, process). */
const METRIC = /\b(?:lookstream|nodejs|process)_[a-z0-9_]+/g

function metricNames(queries: readonly Query[]): Map<string, string[]> {
  const names = new Map<string, string[]>()
  for (const q of queries) {
    for (const name of q.expr.match(METRIC) ?? []) names.set(name, [...(names.get(name) ?? []), q.where])
  }
  return names
}

/** A histogram or summary is described under its family name; its series carry _bucket, _sum and _count. */
function exportedAs(name: string, types: ReadonlyMap<string, string>): string | undefined {
  if (types.has(name)) return name
  const family = /^(.+)_(bucket|sum|count)$/.exec(name)?.[1]
  if (family && (types.get(family) === 'histogram' || types.get(family) === 'summary')) return family
  return undefined
}

let pipeline: Pipeline
let prometheus: Prometheus | undefined
const extra: SpawnedService[] = []
const SERVICE_NAMES = services.map((s) => s.name).sort()
let dashboardQueries: Query[]
let alertQueries: Query[]

beforeAll(async () => {
  const { dashboards } = (await import(DASHBOARDS_TS)) as { dashboards: DashboardSource[] }
  dashboardQueries = dashboards.flatMap((d) => [
    // A variable's values come from label_values(metric, label): the same series as this query.
    ...(d.variables ?? []).map((v) => ({
      where: `${d.uid} / $${v.name}`,
      expr: `count by (${v.label}) (${v.metric})`,
    })),
    ...d.panels.flatMap((p) => p.exprs.map((e) => ({ where: `${d.uid} / ${p.title}`, expr: e.expr }))),
  ])
  alertQueries = alertExprs(readFileSync(ALERTS_FILE, 'utf8'))

  pipeline = await startPipeline()
  await pipeline.startSegment()
  const targets = [
    { url: pipeline.ingress.url, service: 'ingress' },
    { url: pipeline.segments[0]!.url, service: 'segment' },
  ]
  const others = services.filter((s) => s.kind === 'destination' && s.name !== 'segment')
  if (others.length > 0) {
    const simulators = await spawnService(
      join(ROOT, SIMULATORS_ENTRY.replace(/dist\/src\/(.+)\.js$/, 'src/$1.ts')),
      {},
      {
        args: ['--segment-port', '0', '--braze-port', '0', '--heap-port', '0', '--mparticle-port', '0'],
        listenLine: /^mparticle simulator listening on (http:\/\/\S+)$/,
        readyPath: null,
      },
    )
    extra.push(simulators)
    const urls = new Map(
      simulators.process
        .lines()
        .map((line) => /^(\w+) simulator listening on (http:\/\/\S+)$/.exec(line))
        .filter((m) => m !== null)
        .map((m) => [m[1]!, m[2]!]),
    )
    for (const service of others) {
      const env: Record<string, string> = {
        KAFKA_BROKERS: pipeline.kafka.brokers,
        REDIS_URL: pipeline.redis.url,
        HOST: '127.0.0.1',
        PORT: String(await freePort()),
        LOG_LEVEL: 'warn',
      }
      for (const setting of service.settings) {
        env[setting.name] = setting.example.replace(/^http:\/\/simulators:\d+/, () => urls.get(service.simulator!)!)
      }
      const spawned = await spawnService(join(ROOT, 'services', service.name, 'src/main.ts'), env, {
        readyTimeoutMs: 60_000,
      })
      extra.push(spawned)
      targets.push({ url: spawned.url, service: service.name })
    }
  }
  prometheus = await startPrometheus({ job: JOB, targets, ruleFiles: [ALERTS_FILE] })

  // A little traffic so that the counters have series: 4 rows delivered, 1 rejected (no user_id, no email).
  const look = identifyLook({ prefix: 'obs', rows: 5, rejectRows: [2] })
  const sent = await pipeline.execute({ look: look.body, mode: 'pushed', scheduledPlanId: 4242 })
  expect(sent.status).toBe(200)
  expect(sent.looker.rows).toEqual({ received: 5, accepted: 4, rejected: 1 })
  await waitForAccepted(pipeline.simulator, 'obs', 4, 60_000)
}, 180_000)

afterAll(async () => {
  try {
    await prometheus?.stop()
  } finally {
    for (const service of extra.reverse()) await service.stop('SIGTERM', 15_000).catch(() => undefined)
    await pipeline?.stop()
  }
}, 90_000)

describe('observability: deploy/ against a live Prometheus scraping the running services', () => {
  it('every service of deploy/services.ts is a target of job lookstream, and up', async () => {
    const targets = await waitFor(
      async () => {
        const active = (await prometheus!.targets()).filter((t) => t.scrapePool === JOB)
        return active.length === SERVICE_NAMES.length && active.every((t) => t.health === 'up') ? active : false
      },
      { timeoutMs: 30_000, intervalMs: 250, message: `all ${JOB} targets up` },
    )
    expect(targets.map((t) => t.labels.service).sort()).toEqual(SERVICE_NAMES)
    for (const t of targets) expect(t.lastError, t.scrapeUrl).toBe('')
  })

  it('Prometheus sees the traffic: rows accepted and rejected by the ingress, messages delivered to Segment', async () => {
    const value = async (promql: string) => {
      const answer = await prometheus!.query(promql)
      return Number(answer.data?.result[0]?.value?.[1] ?? Number.NaN)
    }
    await waitFor(
      async () =>
        (await value(`sum(lookstream_ingress_rows_total{job="${JOB}",outcome="accepted"})`)) === 4 &&
        (await value(`sum(lookstream_ingress_rows_total{job="${JOB}",outcome="rejected"})`)) === 1 &&
        (await value(`sum(lookstream_destination_delivered_total{job="${JOB}",service="segment"})`)) === 4,
      { timeoutMs: 30_000, intervalMs: 250, message: 'the scraped counters to show the send' },
    )
  })

  it('the generated Grafana JSON carries exactly the queries of dashboards.ts', () => {
    const fromJson = dashboardQueries
      .map((q) => q.where.split(' / ')[0]!)
      .filter((uid, i, all) => all.indexOf(uid) === i)
      .flatMap((uid) => {
        const json = JSON.parse(readFileSync(new URL(`${uid}.json`, DASHBOARD_JSON_DIR), 'utf8')) as {
          templating: { list: { name: string; definition: string }[] }
          panels: { title: string; targets: { expr: string }[] }[]
        }
        const variables = json.templating.list.map((v) => {
          const [, metric, label] = /^label_values\((\w+), (\w+)\)$/.exec(v.definition) ?? []
          return { where: `${uid} / $${v.name}`, expr: `count by (${label}) (${metric})` }
        })
        return [
          ...variables,
          ...json.panels.flatMap((p) => p.targets.map((t) => ({ where: `${uid} / ${p.title}`, expr: t.expr }))),
        ]
      })
    expect(fromJson).toEqual(dashboardQueries)
  })

  it('every dashboard query is accepted by /api/v1/query', async () => {
    expect(dashboardQueries.length).toBeGreaterThan(0)
    const refused: string[] = []
    for (const q of dashboardQueries) {
      const promql = forPrometheus(q.expr)
      expect(promql, `${q.where}: a Grafana variable left in the query`).not.toContain('$')
      const answer = await prometheus!.query(promql)
      if (answer.status !== 'success') refused.push(`${q.where}: HTTP ${answer.httpStatus} ${answer.error}`)
    }
    expect(refused).toEqual([])
  })

  it('the panels the traffic feeds show data, and the per-service panels show every service', async () => {
    const fed = [
      'lookstream-ingress / Sends by outcome',
      'lookstream-ingress / Rows/s by outcome',
      'lookstream-ingress / Rejected rows by reason',
      'lookstream-ingress / Produce latency p99',
      'lookstream-ingress / Action Hub requests/s by status',
      'lookstream-delivery / $destination',
      'lookstream-delivery / Delivered/s',
      'lookstream-delivery / Requests/s by status',
      'lookstream-delivery / Request latency p99',
      'lookstream-delivery / Items per request p50',
      'lookstream-kafka / Consumer lag (canonical topics)',
    ]
    const series = async (where: string) => {
      const queries = dashboardQueries.filter((q) => q.where === where)
      expect(queries.length, where).toBeGreaterThan(0)
      const answers = await Promise.all(queries.map((q) => prometheus!.query(forPrometheus(q.expr))))
      return answers.map((a) => a.data?.result.map((r) => r.metric) ?? [])
    }
    const empty = await waitFor(
      async () => {
        const missing: string[] = []
        for (const where of fed) if ((await series(where)).some((result) => result.length === 0)) missing.push(where)
        return missing.length === 0 ? missing : false
      },
      { timeoutMs: 30_000, intervalMs: 500, message: 'every panel fed by the send to show data' },
    )
    expect(empty).toEqual([])

    const destinations = services
      .filter((s) => s.kind === 'destination')
      .map((s) => s.name)
      .sort()
    const labelsOf = (results: Record<string, string>[][], label: string) =>
      results.map((r) => [...new Set(r.map((m) => m[label]!))].sort())
    expect(labelsOf(await series('lookstream-runtime / Targets up'), 'service')).toEqual([SERVICE_NAMES])
    expect(labelsOf(await series('lookstream-runtime / Heap used against its cap'), 'service')).toEqual([
      SERVICE_NAMES,
      SERVICE_NAMES,
    ])
    expect(labelsOf(await series('lookstream-runtime / Event-loop lag p99'), 'service')).toEqual([SERVICE_NAMES])
    expect(labelsOf(await series('lookstream-runtime / Redis available (destinations)'), 'destination')).toEqual([
      destinations,
    ])
  })

  it('every alert expression is accepted by /api/v1/query', async () => {
    expect(alertQueries.length).toBeGreaterThan(0)
    const refused: string[] = []
    for (const q of alertQueries) {
      const answer = await prometheus!.query(q.expr)
      if (answer.status !== 'success') refused.push(`${q.where}: HTTP ${answer.httpStatus} ${answer.error}`)
    }
    expect(refused).toEqual([])
  })

  it('Prometheus loads alerts.yml and evaluates every rule without error', async () => {
    const rules = await waitFor(
      async () => {
        const loaded = await prometheus!.rules()
        return loaded.length > 0 && loaded.every((r) => !r.lastEvaluation.startsWith('0001-')) ? loaded : false
      },
      { timeoutMs: 30_000, intervalMs: 250, message: 'every alert rule evaluated once' },
    )
    expect(rules.length).toBe(alertQueries.length)
    expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([])
  })

  it('every metric a dashboard or alert names is exported by a running service', async () => {
    const names = metricNames([...dashboardQueries, ...alertQueries])
    expect(names.size).toBeGreaterThan(0)
    // prom-client writes HELP and TYPE for a labelled counter before its first increment, and Prometheus keeps
    // the metadata of every family in the last scrape: wait until every target has been scraped.
    const metadata = await waitFor(
      async () => {
        const all = await prometheus!.targetMetadata(`{job="${JOB}"}`)
        const scraped = new Set(all.map((m: TargetMetadata) => m.target.service))
        return SERVICE_NAMES.every((name) => scraped.has(name)) ? all : false
      },
      { timeoutMs: 30_000, intervalMs: 250, message: 'metadata from every service' },
    )
    const types = new Map(metadata.map((m) => [m.metric, m.type]))
    const missing = [...names]
      .filter(([name]) => exportedAs(name, types) === undefined)
      .map(([name, where]) => `${name} (used by ${[...new Set(where)].join('; ')})`)
    expect(missing, 'metrics no running service exports').toEqual([])
  })
})
