// Generates deploy/grafana/dashboards/*.json. Run: node deploy/grafana/dashboards.ts [--check]
// Every query here is evaluated against a live Prometheus scraping the running services in test/.
import { readFileSync, writeFileSync } from 'node:fs'

export interface Panel {
  title: string
  unit: string
  exprs: { expr: string; legend: string }[]
}

export interface Dashboard {
  uid: string
  title: string
  panels: Panel[]
}

export const dashboards: Dashboard[] = [
  {
    uid: 'lookstream-ingress',
    title: 'lookstream / ingress',
    panels: [
      {
        title: 'Sends by outcome',
        unit: 'short',
        exprs: [
          {
            expr: 'sum by (action, outcome) (increase(lookstream_ingress_sends_total[$__rate_interval]))',
            legend: '{{action}} {{outcome}}',
          },
        ],
      },
      {
        title: 'Sends in progress',
        unit: 'short',
        exprs: [{ expr: 'sum(lookstream_ingress_sends_in_progress)', legend: 'in progress' }],
      },
      {
        title: 'Rows/s by outcome',
        unit: 'rps',
        exprs: [
          { expr: 'sum by (outcome) (rate(lookstream_ingress_rows_total[$__rate_interval]))', legend: '{{outcome}}' },
        ],
      },
      {
        title: 'Rejected rows by reason',
        unit: 'rps',
        exprs: [
          {
            expr: 'sum by (reason) (rate(lookstream_ingress_rows_total{outcome="rejected"}[$__rate_interval]))',
            legend: '{{reason}}',
          },
        ],
      },
      {
        title: 'Produce latency p99',
        unit: 's',
        exprs: [
          {
            expr: 'histogram_quantile(0.99, sum by (le) (rate(lookstream_ingress_produce_latency_seconds_bucket[$__rate_interval])))',
            legend: 'p99',
          },
        ],
      },
      {
        title: 'Bytes streamed from Looker',
        unit: 'Bps',
        exprs: [{ expr: 'sum(rate(lookstream_ingress_bytes_streamed_total[$__rate_interval]))', legend: 'bytes/s' }],
      },
    ],
  },
  {
    uid: 'lookstream-destinations',
    title: 'lookstream / destinations',
    panels: [
      {
        title: 'Delivered/s',
        unit: 'rps',
        exprs: [
          {
            expr: 'sum by (destination, connection) (rate(lookstream_destination_delivered_total[$__rate_interval]))',
            legend: '{{destination}} {{connection}}',
          },
        ],
      },
      {
        title: 'Failed/s by class',
        unit: 'rps',
        exprs: [
          {
            expr: 'sum by (destination, class) (rate(lookstream_destination_failed_total[$__rate_interval]))',
            legend: '{{destination}} {{class}}',
          },
        ],
      },
      {
        title: 'Retries/s',
        unit: 'rps',
        exprs: [
          {
            expr: 'sum by (destination) (rate(lookstream_destination_retries_total[$__rate_interval]))',
            legend: '{{destination}}',
          },
        ],
      },
      {
        title: 'Dead-lettered',
        unit: 'short',
        exprs: [
          {
            expr: 'sum by (destination, reason) (increase(lookstream_destination_dead_lettered_total[$__rate_interval]))',
            legend: '{{destination}} {{reason}}',
          },
        ],
      },
      {
        title: 'Request latency p99',
        unit: 's',
        exprs: [
          {
            expr: 'histogram_quantile(0.99, sum by (destination, le) (rate(lookstream_destination_request_duration_seconds_bucket[$__rate_interval])))',
            legend: '{{destination}}',
          },
        ],
      },
      {
        title: 'Consumer lag',
        unit: 'short',
        exprs: [{ expr: 'sum by (destination) (lookstream_destination_consumer_lag)', legend: '{{destination}}' }],
      },
      {
        title: 'Paused connections (credentials rejected)',
        unit: 'short',
        exprs: [
          {
            expr: 'max by (destination, connection) (lookstream_destination_connection_paused)',
            legend: '{{destination}} {{connection}}',
          },
        ],
      },
    ],
  },
]

function toGrafana(dashboard: Dashboard): object {
  return {
    uid: dashboard.uid,
    title: dashboard.title,
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    tags: ['lookstream'],
    panels: dashboard.panels.map((panel, i) => ({
      id: i + 1,
      type: 'timeseries',
      title: panel.title,
      datasource: { type: 'prometheus', uid: 'prometheus' },
      gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
      fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
      targets: panel.exprs.map((e, j) => ({
        refId: String.fromCharCode(65 + j),
        datasource: { type: 'prometheus', uid: 'prometheus' },
        expr: e.expr,
        legendFormat: e.legend,
      })),
    })),
  }
}

if (import.meta.main) {
  const check = process.argv.includes('--check')
  let stale = false
  for (const dashboard of dashboards) {
    const path = new URL(`./dashboards/${dashboard.uid}.json`, import.meta.url)
    const json = JSON.stringify(toGrafana(dashboard), null, 2) + '\n'
    if (check) {
      let current: string | undefined
      try {
        current = readFileSync(path, 'utf8')
      } catch {
        current = undefined
      }
      if (current !== json) {
        console.error(`${path.pathname} is out of date: run node deploy/grafana/dashboards.ts`)
        stale = true
      }
    } else {
      writeFileSync(path, json)
    }
  }
  process.exit(stale ? 1 : 0)
}
