// An HTTP proxy on 127.0.0.1 between the recurly-engage service and the local S3: requests pass through unchanged
// (the Host header is kept, so signatures stay valid) unless the simulators' fault injector picks a fault for
// them, which S3 answers as S3 does: 503 SlowDown for throttling, 500 InternalError, or no answer at all.
import { FaultInjector, type FaultConfig, type FaultDecision } from '@lookstream/simulators'
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import { type AddressInfo, type Socket } from 'node:net'

export interface S3FaultProxy {
  endpoint: string
  faults: FaultInjector
  configure(config: FaultConfig): void
  /** Requests answered with an injected fault, by label (e.g. rate:503). */
  injected(): Record<string, number>
  close(): Promise<void>
}

const S3_CODES: Record<number, string> = { 503: 'SlowDown', 500: 'InternalError' }

export async function startS3FaultProxy(target: string): Promise<S3FaultProxy> {
  const upstream = new URL(target)
  const faults = new FaultInjector()
  const injected: Record<string, number> = {}
  const sockets = new Set<Socket>()
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const proxied = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
        upstreamRes.pipe(res)
      },
    )
    proxied.on('error', () => res.destroy())
    req.pipe(proxied)
  }
  const answer = (req: IncomingMessage, res: ServerResponse, decision: FaultDecision) => {
    const action = decision.action
    if (action === undefined || decision.label === undefined) return forward(req, res)
    injected[decision.label] = (injected[decision.label] ?? 0) + 1
    req.resume()
    if (action.type === 'hang') return
    if (action.type === 'reset') return void req.socket.destroy()
    const respond = () => {
      const code = S3_CODES[action.status] ?? 'InternalError'
      res.writeHead(action.status, { 'content-type': 'application/xml', ...action.headers })
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`)
    }
    if (req.readableEnded) respond()
    else req.on('end', respond)
  }
  const server = createServer((req, res) => {
    const decision = faults.decide()
    // The latency first (the body waits, paused, in the socket), then the decision.
    if (decision.latencyMs > 0) {
      req.pause()
      setTimeout(() => answer(req, res, decision), decision.latencyMs)
    } else answer(req, res, decision)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    faults,
    configure: (config) => faults.configure(config),
    injected: () => ({ ...injected }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
