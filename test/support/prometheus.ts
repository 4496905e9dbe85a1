import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startManagedProcess, type ManagedProcess } from '@lookstream/testing'
import { request } from 'undici'

// A real Prometheus server (Debian's `prometheus` binary) as a child process, scraping services on loopback
// with a 1 s interval. It binds port 0 and the port is read back from its "Listening on" log line.

export interface ScrapeTarget {
  /** Base URL of a service, e.g. http://127.0.0.1:4312 (its /metrics is scraped). */
  url: string
  /** The `service` target label, as deploy/prometheus/prometheus.yml sets it. */
  service: string
}

export interface PrometheusOptions {
  job: string
  targets: ScrapeTarget[]
  /** Absolute paths of rule files to load (evaluated every second). */
  ruleFiles?: string[]
  readyTimeoutMs?: number
}

export interface PrometheusTarget {
  labels: Record<string, string>
  scrapePool: string
  scrapeUrl: string
  health: 'up' | 'down' | 'unknown'
  lastError: string
}

export interface PrometheusRule {
  name: string
  query: string
  health: string
  lastError?: string
  lastEvaluation: string
  type: string
}

export interface TargetMetadata {
  target: Record<string, string>
  metric: string
  type: string
  help: string
}

export interface QueryAnswer {
  httpStatus: number
  status: 'success' | 'error'
  error?: string
  data?: { resultType: string; result: { metric: Record<string, string>; value?: [number, string] }[] }
}

export interface Prometheus {
  url: string
  pid: number
  process: ManagedProcess
  query(promql: string): Promise<QueryAnswer>
  targets(): Promise<PrometheusTarget[]>
  targetMetadata(matchTarget: string): Promise<TargetMetadata[]>
  rules(): Promise<PrometheusRule[]>
  /** SIGTERM by PID (SIGKILL after the grace period), then removes the config and TSDB directory. */
  stop(): Promise<void>
}

const LISTENING = /msg="Listening on" address=127\.0\.0\.1:(\d+)/

function configYaml(options: PrometheusOptions): string {
  // JSON is valid YAML: no YAML writer needed.
  return JSON.stringify({
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: [
      {
        job_name: options.job,
        static_configs: options.targets.map((t) => ({
          targets: [new URL(t.url).host],
          labels: { service: t.service },
        })),
      },
    ],
  })
}

async function getJson<T>(url: string): Promise<{ httpStatus: number; body: T }> {
  const res = await request(url, { headersTimeout: 15_000, bodyTimeout: 15_000 })
  return { httpStatus: res.statusCode, body: (await res.body.json()) as T }
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'lookstream-prometheus-'))
  const configFile = join(dir, 'prometheus.yml')
  await writeFile(configFile, configYaml(options))
  let port: number | undefined
  let proc: ManagedProcess
  try {
    proc = await startManagedProcess({
      name: 'prometheus',
      command: 'prometheus',
      args: [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        '--web.listen-address=127.0.0.1:0',
        '--log.level=info',
      ],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      cwd: dir,
      onLine: (line) => {
        const match = LISTENING.exec(line)
        if (match) port ??= Number(match[1])
      },
      readyCheck: async () => {
        if (port === undefined) return false
        const res = await request(`http://127.0.0.1:${port}/-/ready`, { headersTimeout: 2_000 })
        await res.body.dump()
        return res.statusCode === 200
      },
      readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
      keepLines: 500,
    })
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  const url = `http://127.0.0.1:${port}`
  const api = (path: string, params: Record<string, string> = {}) =>
    `${url}/api/v1/${path}${Object.keys(params).length ? `?${new URLSearchParams(params).toString()}` : ''}`

  return {
    url,
    pid: proc.pid,
    process: proc,
    async query(promql) {
      const { httpStatus, body } = await getJson<Omit<QueryAnswer, 'httpStatus'>>(api('query', { query: promql }))
      return { httpStatus, ...body }
    },
    async targets() {
      const { body } = await getJson<{ data: { activeTargets: PrometheusTarget[] } }>(
        api('targets', { state: 'active' }),
      )
      return body.data.activeTargets
    },
    async targetMetadata(matchTarget) {
      const { body } = await getJson<{ status: string; data: TargetMetadata[] }>(
        api('targets/metadata', { match_target: matchTarget }),
      )
      return body.data
    },
    async rules() {
      const { body } = await getJson<{ data: { groups: { rules: PrometheusRule[] }[] } }>(api('rules'))
      return body.data.groups.flatMap((g) => g.rules)
    },
    async stop() {
      try {
        await proc.stop('SIGTERM', 10_000)
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    },
  }
}
