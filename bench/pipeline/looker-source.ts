import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import { type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

// A Looker instance's one-time download_url for the benchmark: a json_detail_lite_stream identify Look
// generated row by row while it streams, either as fast as the socket takes it or paced at a steady rate.
// The time each row was handed to the socket is recorded: it stands in for "ingress receipt" in the latency
// figures (the ingress reads the socket continuously, and stamps nothing per row itself).

export interface LookSpec {
  prefix: string
  rows: number
  ranAt: string
  /** Rows per second; unpaced when omitted. */
  rowsPerSecond?: number
}

export interface LookerSource {
  origin: string
  serve(spec: LookSpec): { url: string; writtenAt: Float64Array }
  close(): Promise<void>
}

const FIELDS = {
  dimensions: [
    { name: 'users.id', label: 'Users ID', view: 'users', tags: ['user_id'], type: 'string' },
    { name: 'users.email', label: 'Users Email', view: 'users', tags: ['email'], type: 'string' },
    { name: 'users.plan', label: 'Users Plan', view: 'users', tags: [], type: 'string' },
    { name: 'users.country', label: 'Users Country', view: 'users', tags: [], type: 'string' },
  ],
  measures: [{ name: 'orders.count', label: 'Orders Count', view: 'orders', tags: [], measure: true, type: 'count' }],
  table_calculations: [],
  pivots: [],
}
const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'ES']
const CHUNK_ROWS = 500
const TICK_MS = 2

export function rowIndexOf(prefix: string, userId: string): number {
  return Number(userId.slice(prefix.length + 1))
}

function row(prefix: string, i: number): string {
  return (
    `{"users.id":{"value":"${prefix}-${i}"},"users.email":{"value":"${prefix}-${i}@example.com"},` +
    `"users.plan":{"value":"${i % 3 === 0 ? 'annual' : 'monthly'}"},"users.country":{"value":"${COUNTRIES[i % 7]}"},` +
    `"orders.count":{"value":${i % 50}}}`
  )
}

function now(): number {
  return performance.timeOrigin + performance.now()
}

async function write(res: ServerResponse, chunk: string): Promise<void> {
  if (!res.write(chunk)) await once(res, 'drain')
}

async function stream(res: ServerResponse, spec: LookSpec, writtenAt: Float64Array): Promise<void> {
  await write(res, `{"ran_at":${JSON.stringify(spec.ranAt)},"fields":${JSON.stringify(FIELDS)},"data":[`)
  let next = 0
  const emit = async (until: number) => {
    let chunk = ''
    const first = next
    for (; next < until; next++) chunk += next === 0 ? row(spec.prefix, next) : `,${row(spec.prefix, next)}`
    await write(res, chunk)
    writtenAt.fill(now(), first, until)
  }
  if (spec.rowsPerSecond === undefined) {
    while (next < spec.rows) await emit(Math.min(spec.rows, next + CHUNK_ROWS))
  } else {
    const started = now()
    while (next < spec.rows) {
      const due = Math.min(spec.rows, Math.floor(((now() - started) / 1000) * spec.rowsPerSecond))
      if (due > next) await emit(due)
      else await sleep(TICK_MS)
    }
  }
  res.end('],"has_totals":false}')
}

export async function startLookerSource(): Promise<LookerSource> {
  const looks = new Map<string, { spec: LookSpec; writtenAt: Float64Array; used: boolean }>()
  const server = createServer((req, res) => {
    const look = looks.get(req.url ?? '')
    if (req.method !== 'GET' || look === undefined || look.used) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not found"}')
      return
    }
    look.used = true
    res.writeHead(200, { 'content-type': 'application/json' })
    stream(res, look.spec, look.writtenAt).catch(() => res.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    serve(spec) {
      const path = `/downloads/${randomUUID()}`
      const writtenAt = new Float64Array(spec.rows)
      looks.set(path, { spec, writtenAt, used: false })
      return { url: `${origin}${path}`, writtenAt }
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
