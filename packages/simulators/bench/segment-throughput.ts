// Pushes identify batches through the Segment simulator running as its own process (the CLI, as `npm start` and the
// end-to-end benchmark run it) and prints the accepted events/s and requests/s per batch size.
// Run: node --conditions=@lookstream/source packages/simulators/bench/segment-throughput.ts [totalEvents] [connections]
import { Pool } from 'undici'
import { spawnSimulators } from '../src/index.ts'

const totalEvents = Number(process.argv[2] ?? 200_000)
const connections = Number(process.argv[3] ?? 8)
const batchSizes = (process.env.BATCH_SIZES ?? '10,100,500,1500').split(',').map(Number)
const authorization = `Basic ${Buffer.from('segment-write-key:').toString('base64')}`

function makeBody(run: number, batch: number, size: number): string {
  const events = Array.from({ length: size }, (_, i) => ({
    type: 'identify',
    messageId: `bench-${run}-${batch}-${i}`,
    userId: `user-${batch}-${i}`,
    traits: { plan: 'annual', ltv: 150, email: `user-${i}@example.com`, signup_date: '2024-01-01' },
    timestamp: '2025-06-01T06:00:00Z',
    context: { library: { name: 'lookstream-bench', version: '1' } },
  }))
  return JSON.stringify({ batch: events, sentAt: new Date().toISOString() })
}

const simulators = await spawnSimulators([
  '--segment-port',
  '0',
  '--no-rate-limits',
  '--max-items',
  '1000',
  '--max-requests',
  '1000',
])
const url = simulators.urls.segment as string
const pool = new Pool(url, { connections, pipelining: 1 })
try {
  for (const [run, size] of batchSizes.entries()) {
    const batches = Math.ceil(totalEvents / size)
    // Bodies are built up front so the client's JSON work is not counted against the simulator.
    const bodies = Array.from({ length: batches }, (_, b) => makeBody(run, b, size))
    let next = 0
    let failed = 0
    const started = performance.now()
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++] as string
          const res = await pool.request({
            method: 'POST',
            path: '/v1/batch',
            headers: { authorization, 'content-type': 'application/json' },
            body,
          })
          await res.body.dump()
          if (res.statusCode !== 200) failed++
        }
      }),
    )
    const seconds = (performance.now() - started) / 1000
    const state = (await (await fetch(`${url}/__admin/state`)).json()) as { counters: { accepted: number } }
    process.stdout.write(
      `batch ${String(size).padStart(4)}: ${batches} requests, ${Math.round((batches * size) / seconds)} events/s, ` +
        `${Math.round(batches / seconds)} req/s, accepted so far ${state.counters.accepted}, non-200 ${failed}\n`,
    )
  }
} finally {
  await pool.close()
  await simulators.stop()
}
