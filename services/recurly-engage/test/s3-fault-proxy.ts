import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export type FaultMode =
  | { kind: 'pass' }
  /** Answers with `status`: every request, or only those of `method` whose URL holds `urlIncludes`. */
  | { kind: 'error'; status: number; only?: { method: string; urlIncludes: string } }
  | { kind: 'slow'; delayMs: number }

export interface S3FaultProxy {
  endpoint: string
  /** Requests answered with an injected error so far. */
  injected(): number
  set(mode: FaultMode): void
  close(): Promise<void>
}

/**
 * An HTTP proxy on 127.0.0.1 in front of the test S3: passes requests through unchanged (signatures stay
 * valid: the Host header is kept), answers them with an S3 error, or delays them.
 */
export async function startS3FaultProxy(target: string): Promise<S3FaultProxy> {
  const upstream = new URL(target)
  let mode: FaultMode = { kind: 'pass' }
  let injected = 0
  const server: Server = createServer((req, res) => {
    const current = mode
    if (
      current.kind === 'error' &&
      (current.only === undefined ||
        (req.method === current.only.method && (req.url ?? '').includes(current.only.urlIncludes)))
    ) {
      injected++
      req.resume()
      req.on('end', () => {
        res.writeHead(current.status, { 'content-type': 'application/xml' })
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>',
        )
      })
      return
    }
    const forward = () => {
      const proxied = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
          upstreamRes.pipe(res)
        },
      )
      proxied.on('error', () => res.destroy())
      req.pipe(proxied)
    }
    if (current.kind === 'slow') setTimeout(forward, current.delayMs)
    else forward()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    injected: () => injected,
    set(next) {
      mode = next
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
