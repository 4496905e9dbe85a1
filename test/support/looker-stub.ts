import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

// Stands in for a Looker instance's one-time `scheduled_plan.download_url`: each registered result can be
// downloaded exactly once (as Looker's URLs can), then answers 404. Results are generated row by row while
// they stream, optionally at a paced rate, so large and slow Looks cost no memory.

export interface StreamedLook {
  /** Everything before the first row: `{"ran_at":…,"fields":…,"data":[`. */
  head: string
  rows: number
  /** The JSON of row `index` (no separators). */
  row(index: number): string
  /** Everything after the last row: `]…}`. */
  tail: string
  /** Rows per second; unpaced (as fast as the socket takes them) when omitted. */
  rowsPerSecond?: number
  /** Called when row `index` was handed to the socket, with Date.now()-based time in ms (sub-ms). */
  onRowWritten?: (index: number, at: number) => void
}

export interface Download {
  path: string
  look: StreamedLook | string
  fetches: number
  status?: number
}

export interface LookerStub {
  url: string
  port: number
  /** The origin to list in LOOKER_HOSTS. */
  origin: string
  /** Registers a result and returns its one-time download URL. */
  serve(look: StreamedLook | string, options?: { status?: number }): string
  downloads: Map<string, Download>
  close(): Promise<void>
}

const CHUNK_ROWS = 256
const PACE_TICK_MS = 5

function now(): number {
  return performance.timeOrigin + performance.now()
}

async function write(res: ServerResponse, chunk: string): Promise<void> {
  if (!res.write(chunk)) await once(res, 'drain')
}

async function streamLook(res: ServerResponse, look: StreamedLook): Promise<void> {
  await write(res, look.head)
  let next = 0
  const emit = async (until: number) => {
    const parts: string[] = []
    const first = next
    for (; next < until; next++) parts.push(next === 0 ? look.row(next) : `,${look.row(next)}`)
    await write(res, parts.join(''))
    if (look.onRowWritten) {
      const at = now()
      for (let i = first; i < until; i++) look.onRowWritten(i, at)
    }
  }
  if (look.rowsPerSecond === undefined) {
    while (next < look.rows) await emit(Math.min(look.rows, next + CHUNK_ROWS))
  } else {
    const started = now()
    while (next < look.rows) {
      const due = Math.min(look.rows, Math.floor(((now() - started) / 1000) * look.rowsPerSecond))
      if (due > next) await emit(due)
      else await sleep(PACE_TICK_MS)
    }
  }
  res.end(look.tail)
}

export async function startLookerStub(): Promise<LookerStub> {
  const downloads = new Map<string, Download>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const download = req.method === 'GET' ? downloads.get(req.url ?? '') : undefined
    if (download === undefined || download.fetches > 0) {
      // Used once, expired or unknown: Looker answers with an error page, never with data.
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not found"}')
      if (download) download.fetches++
      return
    }
    download.fetches++
    if (download.status !== undefined && download.status !== 200) {
      res.writeHead(download.status, { 'content-type': 'application/json' }).end('{"message":"Looker error"}')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    if (typeof download.look === 'string') {
      res.end(download.look)
      return
    }
    streamLook(res, download.look).catch(() => res.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  return {
    url: origin,
    port,
    origin,
    downloads,
    serve(look, options = {}) {
      const path = `/downloads/${randomUUID()}`
      downloads.set(path, {
        path,
        look,
        fetches: 0,
        ...(options.status === undefined ? {} : { status: options.status }),
      })
      return `${origin}${path}`
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
