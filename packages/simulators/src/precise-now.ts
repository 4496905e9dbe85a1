import { performance } from 'node:perf_hooks'

// Fixed for the life of the process: read once rather than through its getter at every time stamp.
const timeOrigin = performance.timeOrigin

// Epoch milliseconds with sub-millisecond resolution: latency benchmarks subtract these from producer timestamps,
// and Date.now() alone cannot tell apart events accepted within the same millisecond.
export function preciseNow(): number {
  return timeOrigin + performance.now()
}
