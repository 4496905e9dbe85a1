// When a Braze bulk connection's requests reach the simulator: a backlog of identify messages (the ingress's shape
// for the destination pipeline benchmark's Braze Look, brazeIdentify of bench/e2e/identify-backlog.ts, with random
// UUID messageIds) is on lookstream.identify.v1 before the braze service starts on a BRAZE_BULK connection at RPS
// requests a second (the simulator allows 2,000):
//   node --conditions=@lookstream/source bench/destinations/bulk-spacing.ts [ROWS] [RPS] [NAME=VALUE]…
// NAME=VALUE pairs go to the service's environment (e.g. DELIVERY_MAX_IN_FLIGHT_MESSAGES=20000). Printed: the
// requests' rate over their span, the gaps between arrivals (10th, 50th, 90th percentile, the largest, and every
// gap with the request's object count), the simulator's time per request, the service's CPU and its rate-limit waits.
import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnSimulators } from '@lookstream/simulators'
import { buildProject, readStartCommand, spawnService } from '@lookstream/testing'
import { request } from 'undici'
import { brazeIdentify, identifyProducer, startKafkaAndRedis, stopsFor } from '../e2e/identify-backlog.ts'
import { envPairs } from '../env-pairs.ts'
import { cpuSeconds } from '../ingress/proc-stats.ts'

const N = Number(process.argv[2] ?? 100_000)
const RPS = process.argv[3] ?? '50'
const EXTRA = process.argv.slice(4)
const dataDir = mkdtempSync(join(tmpdir(), 'bench-bulk-'))
const stops = stopsFor(dataDir)
try {
  const { kafka, redis } = await startKafkaAndRedis(dataDir, stops)
  const sim = await spawnSimulators([
    '--braze-port',
    '0',
    '--braze-api-key',
    'k',
    '--max-items',
    '1000',
    '--max-requests',
    '20000',
  ])
  stops.push(() => sim.stop())
  const url = sim.urls.braze!
  await request(`${url}/__admin/rate-limits`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ requests: { limit: 6000, windowMs: 3000 }, bulkRequests: { limit: 2000, windowMs: 1000 } }),
  })
    .then((r) => r.body.text())
    .then((t) => console.error('limits', t.slice(0, 200)))
  const run = Date.now().toString(36)
  // The ingress's messageIds are UUIDs (a `<run>-<n>` id would take the dedupe's hashed form).
  const { produce } = await identifyProducer(kafka.brokers, stops, (r, i) => ({
    ...brazeIdentify(r, i),
    messageId: randomUUID(),
  }))
  await produce(run, N)
  const dir = new URL('../../services/braze/', import.meta.url).pathname
  const start = readStartCommand(dir)
  buildProject(dir)
  const env: Record<string, string> = {
    ...start.env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    KAFKA_BROKERS: kafka.brokers,
    REDIS_URL: redis.url,
    BRAZE_API_KEY: 'k',
    BRAZE_REST_ENDPOINT: url,
    BRAZE_ALLOWED_HOSTS: new URL(url).host,
    BRAZE_BULK: 'true',
    BRAZE_BULK_REQUESTS_PER_SECOND: RPS,
  }
  Object.assign(env, envPairs(EXTRA))
  const service = await spawnService(start.entry, env, {
    readyTimeoutMs: 60_000,
    compiled: true,
    nodeArgs: start.nodeArgs,
  })
  stops.push(() => service.stop('SIGTERM', 20_000))
  const t0 = Date.now()
  const cpu0 = cpuSeconds(service.pid)
  for (;;) {
    const s = (await (await request(`${url}/__admin/state`)).body.json()) as {
      counters: { acceptedIds: number; rateLimited: number; requests: number }
    }
    if (s.counters.acceptedIds >= N) {
      console.error('counters', JSON.stringify(s.counters))
      console.error(
        `service CPU ${(cpuSeconds(service.pid) - cpu0).toFixed(2)} s in ${((Date.now() - t0) / 1000).toFixed(2)} s`,
      )
      break
    }
    if (Date.now() - t0 > 300_000) throw new Error(`only ${s.counters.acceptedIds} of ${N} rows accepted in 300 s`)
    await sleep(50)
  }
  const page = (await (await request(`${url}/__admin/requests?limit=20000`)).body.json()) as {
    items: { receivedAt: number; respondedAt: number; items: number; status: number }[]
  }
  const reqs = page.items.filter((r) => r.items > 0).sort((a, b) => a.receivedAt - b.receivedAt)
  const gaps = reqs
    .slice(1)
    .map((r, i) => r.receivedAt - reqs[i]!.receivedAt)
    .sort((a, b) => a - b)
  const q = (p: number) => gaps[Math.floor(p * (gaps.length - 1))]!.toFixed(1)
  const span = (reqs.at(-1)!.receivedAt - reqs[0]!.receivedAt) / 1000
  const lat = reqs.map((r) => r.respondedAt - r.receivedAt).sort((a, b) => a - b)
  console.log(
    'top gaps',
    gaps
      .slice(-12)
      .map((g) => g.toFixed(0))
      .join(' '),
  )
  console.log(
    'seq',
    reqs
      .slice(1)
      .map((r, i) => (r.receivedAt - reqs[i]!.receivedAt).toFixed(0) + '/' + r.items)
      .join(' '),
  )
  console.log(
    JSON.stringify({
      requests: reqs.length,
      spanS: span.toFixed(1),
      reqPerS: (reqs.length / span).toFixed(1),
      gapP10: q(0.1),
      gapP50: q(0.5),
      gapP90: q(0.9),
      simLatencyP50: lat[lat.length >> 1]!.toFixed(1),
      itemsPerReq: (N / reqs.length).toFixed(0),
      rowsPerS: Math.round(N / ((Date.now() - t0) / 1000)),
    }),
  )
  const metrics = await (await request(`${service.url}/metrics`)).body.text().catch(() => '')
  console.log(
    metrics
      .split('\n')
      .filter((l) => /rate_limit_wait_seconds_(sum|count)|request_duration_seconds_(sum|count)|in_flight/.test(l))
      .join('\n'),
  )
} finally {
  await stops.stopAll()
}
