import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** The runtime's Prometheus metrics, registered on the service's own registry (docs/metrics.md lists them). */
export function createDestinationMetrics(registry: Registry) {
  const registers = [registry]
  return {
    delivered: new Counter({
      name: 'lookstream_destination_delivered_total',
      help: 'Messages the destination accepted',
      labelNames: ['destination', 'connection'] as const,
      registers,
    }),
    duplicates: new Counter({
      name: 'lookstream_destination_duplicates_skipped_total',
      help: 'Messages not sent because they were already delivered (dedupe in Redis)',
      labelNames: ['destination'] as const,
      registers,
    }),
    skipped: new Counter({
      name: 'lookstream_destination_skipped_total',
      help: 'Messages on the canonical topics addressed to other destinations',
      labelNames: ['destination'] as const,
      registers,
    }),
    failed: new Counter({
      name: 'lookstream_destination_failed_total',
      help: 'Failed delivery attempts of single messages, by error class',
      labelNames: ['destination', 'class'] as const,
      registers,
    }),
    retries: new Counter({
      name: 'lookstream_destination_retries_total',
      help: 'Retries of messages: in-process re-sends (stage=in_process) and parks in the retry topic (stage=topic)',
      labelNames: ['destination', 'stage'] as const,
      registers,
    }),
    deadLettered: new Counter({
      name: 'lookstream_destination_dead_lettered_total',
      help: 'Messages written to the dead-letter topic, by reason code',
      labelNames: ['destination', 'reason'] as const,
      registers,
    }),
    batchSize: new Histogram({
      name: 'lookstream_destination_batch_size',
      help: 'Items per request',
      labelNames: ['destination'] as const,
      buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 2500],
      registers,
    }),
    batchBytes: new Histogram({
      name: 'lookstream_destination_batch_bytes',
      help: 'Request body bytes',
      labelNames: ['destination'] as const,
      buckets: [1024, 8192, 32768, 131072, 262144, 491520, 1048576, 4194304],
      registers,
    }),
    requestDuration: new Histogram({
      name: 'lookstream_destination_request_duration_seconds',
      help: 'Outbound request latency, by HTTP status (or "network")',
      labelNames: ['destination', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    rateLimitLate: new Counter({
      name: 'lookstream_destination_rate_limit_late_total',
      help: 'Bookings on the shared schedule given up because the request woke too late for them (booked again)',
      labelNames: ['destination', 'connection'] as const,
      registers,
    }),
    rateHints: new Counter({
      name: 'lookstream_destination_rate_hints_total',
      help: "Responses on which the destination's usage reader asked to slow the shared rate",
      labelNames: ['destination', 'connection'] as const,
      registers,
    }),
    rateHintShare: new Gauge({
      name: 'lookstream_destination_rate_hint_share',
      help: "The share of the configured rate the destination's latest usage hint asked for",
      labelNames: ['destination', 'connection'] as const,
      registers,
    }),
    rateLimitWait: new Histogram({
      name: 'lookstream_destination_rate_limit_wait_seconds',
      help: 'Time a request waited for the shared rate limit',
      labelNames: ['destination', 'connection'] as const,
      buckets: [0, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    }),
    consumerLag: new Gauge({
      name: 'lookstream_destination_consumer_lag',
      help: 'Messages between the last consumed offset and the high watermark, per partition',
      labelNames: ['destination', 'topic', 'partition'] as const,
      registers,
    }),
    connectionPaused: new Gauge({
      name: 'lookstream_destination_connection_paused',
      help: '1 while a connection is paused because the destination refused its credentials (401/403)',
      labelNames: ['destination', 'connection'] as const,
      registers,
    }),
    orderParkedUsers: new Gauge({
      name: 'lookstream_destination_order_parked_users',
      help: 'Users with a message parked in the retry topic, whose later messages wait behind it (ordered destinations)',
      labelNames: ['destination'] as const,
      registers,
    }),
    orderHeld: new Counter({
      name: 'lookstream_destination_order_held_total',
      help: 'Messages parked behind an earlier parked message of the same user instead of being sent',
      labelNames: ['destination'] as const,
      registers,
    }),
    orderReleases: new Counter({
      name: 'lookstream_destination_order_releases_total',
      help: 'Users whose order was given up: time (release deadline), limit (too many parked), capacity (too many users)',
      labelNames: ['destination', 'reason'] as const,
      registers,
    }),
    redisAvailable: new Gauge({
      name: 'lookstream_destination_redis_available',
      help: '0 while Redis is unreachable and delivery waits for it',
      labelNames: ['destination'] as const,
      registers,
    }),
  }
}

export type DestinationMetrics = ReturnType<typeof createDestinationMetrics>

/**
 * The consumer lag of one destination process, per partition it holds. After a rebalance a partition this member
 * no longer holds loses its series: left at its last value, it would be added to its new owner's by the autoscaler
 * and the lag alerts.
 */
export class PartitionLag {
  readonly #gauge: DestinationMetrics['consumerLag']
  readonly #destination: string
  readonly #reported = new Map<string, { topic: string; partition: string }>()

  constructor(gauge: DestinationMetrics['consumerLag'], destination: string) {
    this.#gauge = gauge
    this.#destination = destination
  }

  /** The lag after the last record of a batch, from the batch's high watermark. */
  set(topic: string, partition: number, highWatermark: string, lastOffset: string): void {
    const labels = { topic, partition: String(partition) }
    this.#gauge.set(
      { destination: this.#destination, ...labels },
      Math.max(0, Number(highWatermark) - Number(lastOffset) - 1),
    )
    const key = `${topic}\u0000${partition}`
    if (!this.#reported.has(key)) this.#reported.set(key, labels)
  }

  /** Drops the series of every partition not in `assigned` (called with each new assignment). */
  keepOnly(assigned: readonly { topic: string; partition: number }[]): void {
    const kept = new Set(assigned.map((p) => `${p.topic}\u0000${p.partition}`))
    for (const [key, labels] of this.#reported) {
      if (kept.has(key)) continue
      this.#gauge.remove({ destination: this.#destination, ...labels })
      this.#reported.delete(key)
    }
  }
}
