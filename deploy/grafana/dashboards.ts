// Generates deploy/grafana/dashboards/*.json. Run: node deploy/grafana/dashboards.ts [--check]
import { readFileSync, writeFileSync } from 'node:fs'

export interface Panel {
  title: string
  unit: string
  exprs: { expr: string; legend: string }[]
}

/** A dashboard variable filled from a label's values; queries use it as `label=~"$name"`. */
export interface Variable {
  name: string
  label: string
  /** The metric whose label values are offered. */
  metric: string
}

export interface Dashboard {
  uid: string
  title: string
  variables?: Variable[]
  panels: Panel[]
}

const CANONICAL = 'topic!~"lookstream[.](retry|dlq)[.].+"'
const RETRY = 'topic=~"lookstream[.]retry[.].+"'
const D = 'destination=~"$destination"'
const destinationVariable: Variable = {
  name: 'destination',
  label: 'destination',
  metric: 'lookstream_destination_delivered_total',
}

const panel = (title: string, unit: string, ...exprs: [expr: string, legend: string][]): Panel => ({
  title,
  unit,
  exprs: exprs.map(([expr, legend]) => ({ expr, legend })),
})

// One dashboard per concern. Every query is evaluated against a live Prometheus in test/observability.test.ts.
export const dashboards: Dashboard[] = [
  {
    uid: 'lookstream-ingress',
    title: 'lookstream / ingress and sends',
    panels: [
      panel('Sends by outcome', 'short', [
        'sum by (action, outcome) (increase(lookstream_ingress_sends_total[$__rate_interval]))',
        '{{action}} {{outcome}}',
      ]),
      panel('Sends in progress', 'short', ['sum(lookstream_ingress_sends_in_progress)', 'in progress']),
      panel('Rows/s by outcome', 'rps', [
        'sum by (outcome) (rate(lookstream_ingress_rows_total[$__rate_interval]))',
        '{{outcome}}',
      ]),
      panel('Rejected rows by reason', 'rps', [
        'sum by (reason) (rate(lookstream_ingress_rows_total{outcome="rejected"}[$__rate_interval]))',
        '{{reason}}',
      ]),
      panel('Produce failures (rows)', 'short', [
        'sum by (action) (increase(lookstream_ingress_rows_total{outcome="failed"}[$__rate_interval]))',
        '{{action}}',
      ]),
      panel('Produce latency p99', 's', [
        'histogram_quantile(0.99, sum by (le) (rate(lookstream_ingress_produce_latency_seconds_bucket[$__rate_interval])))',
        'p99',
      ]),
      panel('Bytes streamed from Looker', 'Bps', [
        'sum(rate(lookstream_ingress_bytes_streamed_total[$__rate_interval]))',
        'bytes/s',
      ]),
      panel('Action Hub requests/s by status', 'rps', [
        'sum by (route, status_code) (rate(lookstream_http_request_duration_seconds_count{service="ingress"}[$__rate_interval]))',
        '{{route}} {{status_code}}',
      ]),
    ],
  },
  {
    uid: 'lookstream-delivery',
    title: 'lookstream / delivery',
    variables: [destinationVariable],
    panels: [
      panel('Delivered/s', 'rps', [
        `sum by (destination, connection) (rate(lookstream_destination_delivered_total{${D}}[$__rate_interval]))`,
        '{{destination}} {{connection}}',
      ]),
      panel('Failed/s by class', 'rps', [
        `sum by (destination, class) (rate(lookstream_destination_failed_total{${D}}[$__rate_interval]))`,
        '{{destination}} {{class}}',
      ]),
      panel('Requests/s by status', 'rps', [
        `sum by (destination, status) (rate(lookstream_destination_request_duration_seconds_count{${D}}[$__rate_interval]))`,
        '{{destination}} {{status}}',
      ]),
      panel('401s and 403s', 'short', [
        `sum by (destination, status) (increase(lookstream_destination_request_duration_seconds_count{${D}, status=~"401|403"}[$__rate_interval]))`,
        '{{destination}} {{status}}',
      ]),
      panel('Paused connections (credentials rejected)', 'short', [
        `max by (destination, connection) (lookstream_destination_connection_paused{${D}})`,
        '{{destination}} {{connection}}',
      ]),
      panel('Request latency p99', 's', [
        `histogram_quantile(0.99, sum by (destination, le) (rate(lookstream_destination_request_duration_seconds_bucket{${D}}[$__rate_interval])))`,
        '{{destination}}',
      ]),
      panel(
        'Rate-limit wait',
        's',
        [
          `histogram_quantile(0.99, sum by (destination, le) (rate(lookstream_destination_rate_limit_wait_seconds_bucket{${D}}[$__rate_interval])))`,
          '{{destination}} p99',
        ],
        [
          `sum by (destination) (rate(lookstream_destination_rate_limit_wait_seconds_sum{${D}}[$__rate_interval]))`,
          '{{destination}} waiting (s/s)',
        ],
      ),
      panel('Items per request p50', 'short', [
        `histogram_quantile(0.5, sum by (destination, le) (rate(lookstream_destination_batch_size_bucket{${D}}[$__rate_interval])))`,
        '{{destination}}',
      ]),
      panel('Duplicates skipped/s', 'rps', [
        `sum by (destination) (rate(lookstream_destination_duplicates_skipped_total{${D}}[$__rate_interval]))`,
        '{{destination}}',
      ]),
      // File destinations (Recurly Engage): one file per send, gathered from staged chunks (docs/adr/0019).
      panel('Files by outcome (file destinations)', 'short', [
        `sum by (destination, outcome) (increase(lookstream_destination_files_total{${D}}[$__rate_interval]))`,
        '{{destination}} {{outcome}}',
      ]),
      panel('Rows staged/s (file destinations)', 'rps', [
        `sum by (destination) (rate(lookstream_destination_file_rows_staged_total{${D}}[$__rate_interval]))`,
        '{{destination}}',
      ]),
      panel('Storage errors by operation (file destinations)', 'short', [
        `sum by (destination, operation) (increase(lookstream_destination_file_storage_errors_total{${D}}[$__rate_interval]))`,
        '{{destination}} {{operation}}',
      ]),
      // Non-zero only after Redis lost data: each send rebuilt from its staging folder, by what it held.
      panel('Sends rebuilt after Redis lost their state (file destinations)', 'short', [
        `sum by (destination, state) (increase(lookstream_destination_file_sends_adopted_total{${D}}[$__rate_interval]))`,
        '{{destination}} {{state}}',
      ]),
    ],
  },
  {
    uid: 'lookstream-kafka',
    title: 'lookstream / Kafka lag, retries and DLQ',
    variables: [destinationVariable],
    panels: [
      panel('Consumer lag (canonical topics)', 'short', [
        `sum by (destination) (lookstream_destination_consumer_lag{${D}, ${CANONICAL}})`,
        '{{destination}}',
      ]),
      panel('Consumer lag per partition', 'short', [
        `sum by (destination, topic, partition) (lookstream_destination_consumer_lag{${D}, ${CANONICAL}})`,
        '{{destination}} {{topic}}/{{partition}}',
      ]),
      panel('Retry topic backlog', 'short', [
        `sum by (destination) (lookstream_destination_consumer_lag{${D}, ${RETRY}})`,
        '{{destination}}',
      ]),
      panel('Retries/s by stage', 'rps', [
        `sum by (destination, stage) (rate(lookstream_destination_retries_total{${D}}[$__rate_interval]))`,
        '{{destination}} {{stage}}',
      ]),
      panel('Dead-lettered by reason', 'short', [
        `sum by (destination, reason) (increase(lookstream_destination_dead_lettered_total{${D}}[$__rate_interval]))`,
        '{{destination}} {{reason}}',
      ]),
      // Per-user order (Braze, Heap, mParticle): every replica reports the same Redis count, hence max.
      panel('Users parked with their later messages held (per-user order)', 'short', [
        `max by (destination) (lookstream_destination_order_parked_users{${D}})`,
        '{{destination}}',
      ]),
      panel('Held behind a parked message/s', 'rps', [
        `sum by (destination) (rate(lookstream_destination_order_held_total{${D}}[$__rate_interval]))`,
        '{{destination}}',
      ]),
      panel('Users released from order, by reason', 'short', [
        `sum by (destination, reason) (increase(lookstream_destination_order_releases_total{${D}}[$__rate_interval]))`,
        '{{destination}} {{reason}}',
      ]),
      panel('Skipped/s (for other destinations)', 'rps', [
        `sum by (destination) (rate(lookstream_destination_skipped_total{${D}}[$__rate_interval]))`,
        '{{destination}}',
      ]),
    ],
  },
  {
    uid: 'lookstream-runtime',
    title: 'lookstream / Redis and runtime',
    panels: [
      panel('Redis available (destinations)', 'short', [
        'min by (destination) (lookstream_destination_redis_available)',
        '{{destination}}',
      ]),
      panel('Targets up', 'short', ['sum by (service) (up{job="lookstream"})', '{{service}}']),
      panel('Event-loop lag p99', 's', ['max by (service) (nodejs_eventloop_lag_p99_seconds)', '{{service}}']),
      panel(
        'Heap used against its cap',
        'bytes',
        ['max by (service) (nodejs_heap_size_used_bytes)', '{{service}} used'],
        ['max by (service) (lookstream_heap_limit_bytes)', '{{service}} cap'],
      ),
      panel('Resident memory', 'bytes', ['max by (service) (process_resident_memory_bytes)', '{{service}}']),
      panel('CPU', 'percentunit', [
        'sum by (service) (rate(process_cpu_seconds_total[$__rate_interval]))',
        '{{service}}',
      ]),
      panel('GC time', 'percentunit', [
        'sum by (service) (rate(nodejs_gc_duration_seconds_sum[$__rate_interval]))',
        '{{service}}',
      ]),
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
    templating: {
      list: (dashboard.variables ?? []).map((v) => ({
        name: v.name,
        label: v.label,
        type: 'query',
        datasource: { type: 'prometheus', uid: 'prometheus' },
        query: { query: `label_values(${v.metric}, ${v.label})`, refId: 'variable' },
        definition: `label_values(${v.metric}, ${v.label})`,
        refresh: 2,
        includeAll: true,
        multi: true,
        allValue: '.+',
        current: { text: 'All', value: '$__all' },
      })),
    },
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
