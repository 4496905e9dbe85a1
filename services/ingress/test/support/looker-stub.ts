import { createServer, type Server, type ServerResponse } from 'node:http'
import { type AddressInfo } from 'node:net'

// A stand-in for the Looker instance's one-time download_url: serves registered bodies on 127.0.0.1.

export type StubRoute =
  | { kind: 'body'; body: string | Buffer; status?: number }
  /** Writes the first `cutAt` bytes, then destroys the connection (a result that breaks off). */
  | { kind: 'break'; body: string; cutAt: number }
  /** Custom writer, e.g. to pause mid-stream until the test says so. */
  | { kind: 'custom'; handle: (response: ServerResponse) => void | Promise<void> }

export interface LookerStub {
  origin: string
  port: number
  route(path: string, route: StubRoute): string
  hits(path: string): number
  close(): Promise<void>
}

export async function startLookerStub(): Promise<LookerStub> {
  const routes = new Map<string, StubRoute>()
  const hits = new Map<string, number>()
  const server: Server = createServer((request, response) => {
    const path = request.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    const route = routes.get(path)
    if (!route) {
      response.writeHead(404, { 'content-type': 'text/html' }).end('<html>not found</html>')
      return
    }
    if (route.kind === 'body') {
      response.writeHead(route.status ?? 200, { 'content-type': 'application/json' }).end(route.body)
    } else if (route.kind === 'break') {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.write(route.body.slice(0, route.cutAt), () => response.destroy())
    } else {
      void route.handle(response)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const origin = `http://127.0.0.1:${port}`
  return {
    origin,
    port,
    route(path, route) {
      routes.set(path, route)
      return `${origin}${path}`
    },
    hits: (path) => hits.get(path) ?? 0,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
