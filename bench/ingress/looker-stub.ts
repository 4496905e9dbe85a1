import { createReadStream } from 'node:fs'
import { createServer } from 'node:http'
import { type AddressInfo } from 'node:net'
import { pipeline } from 'node:stream/promises'

// Stands in for the Looker instance: serves a pre-written result file at a one-time download path on
// 127.0.0.1, streamed from disk (so the stub costs little CPU next to the ingress it feeds).

export interface LookerStub {
  origin: string
  /** Registers a one-time download URL for `file`. */
  offer(file: string): string
  close(): Promise<void>
}

export async function startLookerStub(): Promise<LookerStub> {
  const offers = new Map<string, string>()
  let next = 0
  const server = createServer((request, response) => {
    const file = offers.get(request.url ?? '')
    if (request.method !== 'GET' || file === undefined) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not found"}')
      return
    }
    offers.delete(request.url!)
    response.writeHead(200, { 'content-type': 'application/json' })
    pipeline(createReadStream(file, { highWaterMark: 64 * 1024 }), response).catch(() => response.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    offer(file) {
      const path = `/api/internal/downloads/${++next}`
      offers.set(path, file)
      return `${origin}${path}`
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
