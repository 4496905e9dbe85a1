import { getHeapStatistics } from 'node:v8'
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** One registry per service, never prom-client's global one, labelled with the service name. */
export function createRegistry(service: string): Registry {
  const registry = new Registry()
  registry.setDefaultLabels({ service })
  collectDefaultMetrics({ register: registry })
  // The V8 heap cap (--max-old-space-size, or V8's default for the machine): dashboards draw the heap against it.
  new Gauge({
    name: 'lookstream_heap_limit_bytes',
    help: 'V8 heap size limit of this process (--max-old-space-size or the default)',
    registers: [registry],
    collect() {
      this.set(getHeapStatistics().heap_size_limit)
    },
  })
  return registry
}

export function createHttpMetrics(registry: Registry): Histogram<'method' | 'route' | 'status_code'> {
  return new Histogram({
    name: 'lookstream_http_request_duration_seconds',
    help: 'HTTP requests served, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers: [registry],
  })
}
