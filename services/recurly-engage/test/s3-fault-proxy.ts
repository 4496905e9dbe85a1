import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export type FaultMode =
  | { kind: 'pass' }
  /** Answers with `status`: every request, or only those of `method` whose URL holds `urlIncludes`. */
  | { kind: 'error'; status: number; only?: { method: string; urlIncludes: string } }
  | { kind: 'slow'; delayMs: number }
  /**
   * Passes requests through, but the next `times` answers to `method` requests whose URL holds `urlIncludes` break
   * off after `afterBytes` bytes of their body (the connection is destroyed, as a network failure would).
   */
  | { kind: 'cut'; afterBytes: number; times: number; only: { method: string; urlIncludes: string } }

export interface S3FaultProxy {
  endpoint: string
  /** Requests answered with an injected error so far. */
  injected(): number
  /** Requests seen so far whose URL holds `urlIncludes`. */
  seen(urlIncludes: string): number
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
  const urls: string[] = []
  const server: Server = createServer((req, res) => {
    const current = mode
    if (urls.length < 100_000) urls.push(req.url ?? '')
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
    const cut =
      current.kind === 'cut' &&
      current.times > 0 &&
      req.method === current.only.method &&
      (req.url ?? '').includes(current.only.urlIncludes)
    if (cut) {
      current.times--
      injected++
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
          if (!cut) return void upstreamRes.pipe(res)
          let left = (current as { afterBytes: number }).afterBytes
          upstreamRes.on('data', (data: Buffer) => {
            if (left <= 0) return
            res.write(data.subarray(0, left))
            left -= data.length
            if (left <= 0) {
              upstreamRes.destroy()
              // Flushed first, then the connection goes: the client has the first bytes, then an error.
              res.socket?.end(() => res.socket?.destroy())
            }
          })
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
    seen: (urlIncludes) => urls.filter((url) => url.includes(urlIncludes)).length,
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
