import { performance } from 'node:perf_hooks'

// Epoch milliseconds with sub-millisecond resolution: latency benchmarks subtract these from producer timestamps,
// and Date.now() alone cannot tell apart events accepted within the same millisecond.
export function preciseNow(): number {
  return performance.timeOrigin + performance.now()
}
