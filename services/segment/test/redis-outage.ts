import { segmentEnv, type SegmentStack } from './segment-stack.ts'

// Shared by the Redis-outage tests on each topology.

/** The segment service's environment for an outage test against `redis` (REDIS_* settings of a topology). */
export function outageEnv(stack: SegmentStack, redis: Record<string, string>): Record<string, string> {
  return segmentEnv(stack, {
    SEGMENT_RATE_LIMIT_RPS: '50',
    DELIVERY_MAX_BATCH_ITEMS: '15',
    // spawnService reads the address from Fastify's info-level "Server listening" line.
    LOG_LEVEL: 'info',
    ...redis,
  })
}

/** The sum of a metric's samples over every label set in a Prometheus text exposition (0 when absent). */
export function metricSum(exposition: string, name: string): number {
  let sum = 0
  for (const line of exposition.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+|NaN)$/.exec(line)
    if (match?.[1] === name) sum += Number(match[3])
  }
  return sum
}
