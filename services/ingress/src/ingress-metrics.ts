import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

// Names are listed in docs/metrics.md; dashboards depend on them.
export interface IngressMetrics {
  sends: Counter<'action' | 'outcome'>
  rows: Counter<'action' | 'outcome' | 'reason'>
  produceLatency: Histogram
  bytesStreamed: Counter
  sendsInProgress: Gauge
}

export function createIngressMetrics(registry: Registry): IngressMetrics {
  const registers = [registry]
  return {
    sends: new Counter({
      name: 'lookstream_ingress_sends_total',
      help: 'Looker executes by action and outcome (succeeded, partial, failed, refused).',
      labelNames: ['action', 'outcome'],
      registers,
    }),
    rows: new Counter({
      name: 'lookstream_ingress_rows_total',
      help: 'Rows by outcome (accepted = acknowledged by Kafka, rejected, failed) and reject reason class.',
      labelNames: ['action', 'outcome', 'reason'],
      registers,
    }),
    produceLatency: new Histogram({
      name: 'lookstream_ingress_produce_latency_seconds',
      help: 'Time from handing a message to the producer to its acknowledgement by Kafka.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    bytesStreamed: new Counter({
      name: 'lookstream_ingress_bytes_streamed_total',
      help: 'Bytes of Looker results read (streamed download_url or pushed attachment).',
      registers,
    }),
    sendsInProgress: new Gauge({
      name: 'lookstream_ingress_sends_in_progress',
      help: 'Looker executes being streamed now.',
      registers,
    }),
  }
}

/**
 * `lookstream_ingress_redis_available`: 1 while the ingress's Redis connection is ready. Readiness leaves Redis out
 * (a send goes through without it), so this is where an outage shows.
 */
export function reportRedisAvailability(
  registry: Registry,
  redis: { status: string; on(event: 'ready' | 'close', listener: () => void): unknown },
): void {
  const gauge = new Gauge({
    name: 'lookstream_ingress_redis_available',
    help: "1 while the ingress's Redis connection is ready (send records, the registry, the send history), else 0.",
    registers: [registry],
  })
  gauge.set(redis.status === 'ready' ? 1 : 0)
  redis.on('ready', () => gauge.set(1))
  redis.on('close', () => gauge.set(0))
}
