import { createServer } from 'node:net'

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for programs that cannot bind port 0 and
 * report back (redis-server treats --port 0 as "no TCP"). Callers retry on EADDRINUSE.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}
