import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { waitFor } from '@lookstream/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { identifyLook } from './support/looks.ts'
import { startPipeline, waitForAccepted, type Pipeline } from './support/pipeline.ts'
import { startPrometheus, type Prometheus, type TargetMetadata } from './support/prometheus.ts'

// Every Grafana query and alert expression in deploy/ against a live Prometheus scraping the real services
// (ingress and segment service as processes, local-kafka, redis-server, the Segment simulator).

const JOB = 'lookstream'
const ALERTS_FILE = fileURLToPath(new URL('../deploy/prometheus/alerts.yml', import.meta.url))
const DASHBOARDS_TS = new URL('../deploy/grafana/dashboards.ts', import.meta.url).href
const DASHBOARD_JSON_DIR = new URL('../deploy/grafana/dashboards/', import.meta.url)

interface DashboardSource {
  uid: string
  title: string
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

/** Grafana's range variable, for a plain /api/v1/query. */
function forPrometheus(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '1m')
}

const METRIC = /lookstream_[a-z_]+/g

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
let dashboardQueries: Query[]
let alertQueries: Query[]

beforeAll(async () => {
  const { dashboards } = (await import(DASHBOARDS_TS)) as { dashboards: DashboardSource[] }
  dashboardQueries = dashboards.flatMap((d) =>
    d.panels.flatMap((p) => p.exprs.map((e) => ({ where: `${d.uid} / ${p.title}`, expr: e.expr }))),
  )
  alertQueries = alertExprs(readFileSync(ALERTS_FILE, 'utf8'))

  pipeline = await startPipeline()
  await pipeline.startSegment()
  prometheus = await startPrometheus({
    job: JOB,
    targets: [
      { url: pipeline.ingress.url, service: 'ingress' },
      { url: pipeline.segments[0]!.url, service: 'segment' },
    ],
    ruleFiles: [ALERTS_FILE],
  })

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
    await pipeline?.stop()
  }
}, 60_000)

describe('observability: deploy/ against a live Prometheus scraping the running services', () => {
  it('every target of job lookstream is up (ingress and segment service)', async () => {
    const targets = await waitFor(
      async () => {
        const active = (await prometheus!.targets()).filter((t) => t.scrapePool === JOB)
        return active.length === 2 && active.every((t) => t.health === 'up') ? active : false
      },
      { timeoutMs: 30_000, intervalMs: 250, message: `both ${JOB} targets up` },
    )
    expect(targets.map((t) => t.labels.service).sort()).toEqual(['ingress', 'segment'])
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
          panels: { title: string; targets: { expr: string }[] }[]
        }
        return json.panels.flatMap((p) => p.targets.map((t) => ({ where: `${uid} / ${p.title}`, expr: t.expr })))
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
    // the metadata of every family in the last scrape: wait until both targets have been scraped.
    const metadata = await waitFor(
      async () => {
        const all = await prometheus!.targetMetadata(`{job="${JOB}"}`)
        const services = new Set(all.map((m: TargetMetadata) => m.target.service))
        return services.has('ingress') && services.has('segment') ? all : false
      },
      { timeoutMs: 30_000, intervalMs: 250, message: 'metadata from both services' },
    )
    const types = new Map(metadata.map((m) => [m.metric, m.type]))
    const missing = [...names]
      .filter(([name]) => exportedAs(name, types) === undefined)
      .map(([name, where]) => `${name} (used by ${[...new Set(where)].join('; ')})`)
    expect(missing, 'metrics no running service exports').toEqual([])
  })
})
