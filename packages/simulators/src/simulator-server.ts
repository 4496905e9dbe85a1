import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { gunzipSync } from 'node:zlib'
import { handleAdminRequest } from './admin-api.ts'
import { type FaultAction, FaultInjector, type FaultConfig } from './fault-injector.ts'
import { renderMetrics } from './metrics-text.ts'
import { preciseNow } from './precise-now.ts'
import { type BufferOptions, type RequestRecord, SimulatorState } from './simulator-state.ts'
import { type WindowRateLimiter } from './window-rate-limiter.ts'

export interface SimulatorRequest {
  record: RequestRecord
  method: string
  path: string
  query: URLSearchParams
  headers: IncomingHttpHeaders
  /** Decoded (gunzipped) body. */
  body: Buffer
  receivedAt: number
}

export interface SimulatorResponse {
  status: number
  headers?: Record<string, string>
  /** Objects are sent as JSON, strings as text, undefined as an empty body. */
  body?: unknown
}

export interface AdminRequest {
  method: string
  /** Path below /__admin, e.g. "/profiles". */
  path: string
  query: URLSearchParams
  body: unknown
}

export interface SimulatorDefinition {
  name: string
  /** Bodies above this many (decoded) bytes are answered with `tooLarge()` without being parsed. */
  maxBodyBytes: number
  tooLarge(request: SimulatorRequest): SimulatorResponse
  handle(request: SimulatorRequest): SimulatorResponse
  rateLimits: Record<string, WindowRateLimiter>
  /** Simulator-specific admin routes; undefined when the route is not theirs. */
  admin?(request: AdminRequest): SimulatorResponse | undefined
  /** Extra fields for GET /__admin/state. */
  describe?(): Record<string, unknown>
  /**
   * The headers this API sends with a 429 (given the seconds to wait), so an injected 429 looks like a real one
   * unless the fault sets its own headers.
   */
  rateLimitHeaders?(retryAfterSeconds: number): Record<string, string>
  /** Clears simulator-specific state (dedupe windows, profiles) on reset. */
  reset?(): void
}

export interface CommonSimulatorOptions extends BufferOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number
  host?: string
  faults?: FaultConfig
}

export interface Simulator {
  name: string
  url: string
  port: number
  state: SimulatorState
  faults: FaultInjector
  rateLimits: Record<string, WindowRateLimiter>
  /** Clears recorded items, dedupe windows, rate-limit windows and faults; keeps credentials and limits. */
  reset(): void
  close(): Promise<void>
}

// Past this many raw bytes the body is not even drained: nothing legitimate is that large and a local tool must not
// be made to buffer without bound.
const hardReadLimit = 64 * 1024 * 1024
const adminBodyLimit = 4 * 1024 * 1024
const adminPrefix = '/__admin'

const loggedHeaders = ['content-type', 'content-length', 'content-encoding', 'user-agent', 'x-braze-batch']

function interestingHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of loggedHeaders) {
    const value = headers[name]
    if (typeof value === 'string') out[name] = value
  }
  // Only the scheme: credentials never reach the request log.
  const auth = headers.authorization
  if (typeof auth === 'string') out.authorization = auth.split(' ', 1)[0] ?? ''
  return out
}

interface RawBody {
  body: Buffer
  bytes: number
  truncated: boolean
}

function readBody(req: IncomingMessage, keepBytes: number): Promise<RawBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let bytes = 0
    let truncated = false
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > hardReadLimit) {
        req.destroy()
        reject(new Error('request body over the hard read limit'))
        return
      }
      if (truncated) return
      if (bytes > keepBytes) {
        truncated = true
        chunks.length = 0
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () =>
      resolve({ body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks), bytes, truncated }),
    )
    req.on('error', reject)
  })
}

function send(res: ServerResponse, response: SimulatorResponse): void {
  const headers: Record<string, string> = { ...response.headers }
  let payload: string | undefined
  if (typeof response.body === 'string') {
    payload = response.body
    headers['content-type'] ??= 'text/plain; charset=utf-8'
  } else if (response.body !== undefined) {
    payload = JSON.stringify(response.body)
    headers['content-type'] ??= 'application/json; charset=utf-8'
  }
  headers['content-length'] = String(payload === undefined ? 0 : Buffer.byteLength(payload))
  res.writeHead(response.status, headers)
  res.end(payload)
}

function faultResponse(
  action: Extract<FaultAction, { type: 'status' }>,
  definition: SimulatorDefinition,
): SimulatorResponse {
  // A fault that sets headers sets all of them: a 429 can then carry exactly one of an API's rate-limit headers.
  const defaults = action.status === 429 && action.headers === undefined ? (definition.rateLimitHeaders?.(1) ?? {}) : {}
  return {
    status: action.status,
    headers: { ...defaults, ...action.headers },
    body: action.body ?? { message: `injected fault: HTTP ${action.status}` },
  }
}

/** Starts the HTTP server; `define` receives the state its handlers record into. */
export async function startSimulatorServer(
  options: CommonSimulatorOptions,
  define: (state: SimulatorState) => SimulatorDefinition,
): Promise<Simulator> {
  const state = new SimulatorState(options)
  const definition = define(state)
  const faults = new FaultInjector(options.faults ?? {})
  const host = options.host ?? '127.0.0.1'
  const hanging = new Set<ServerResponse>()

  const reset = (): void => {
    state.reset()
    faults.clear()
    for (const limiter of Object.values(definition.rateLimits)) limiter.reset()
    definition.reset?.()
  }

  const handleAdmin = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const raw = await readBody(req, adminBodyLimit)
    if (raw.truncated) return send(res, { status: 413, body: { error: 'admin request body too large' } })
    let body: unknown
    if (raw.body.length > 0) {
      try {
        body = JSON.parse(raw.body.toString('utf8'))
      } catch {
        return send(res, { status: 400, body: { error: 'admin request body is not JSON' } })
      }
    }
    const request: AdminRequest = {
      method: req.method ?? 'GET',
      path: url.pathname.slice(adminPrefix.length) || '/',
      query: url.searchParams,
      body,
    }
    send(res, handleAdminRequest(request, { definition, state, faults, reset }))
  }

  const handleApi = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const receivedAt = preciseNow()
    const gzip = req.headers['content-encoding'] === 'gzip'
    const raw = await readBody(req, gzip ? hardReadLimit : definition.maxBodyBytes)
    const record = state.beginRequest(receivedAt, raw.bytes)
    let body = raw.body
    let tooLarge = raw.truncated
    let badEncoding = false
    if (gzip && !tooLarge) {
      try {
        body = gunzipSync(body, { maxOutputLength: definition.maxBodyBytes + 1 })
        tooLarge = body.length > definition.maxBodyBytes
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') tooLarge = true
        else badEncoding = true
      }
    }
    const request: SimulatorRequest = {
      record,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: tooLarge ? Buffer.alloc(0) : body,
      receivedAt,
    }
    const decision = faults.decide({ path: request.path, body: request.body })
    if (decision.latencyMs > 0) await sleep(decision.latencyMs)

    const log = (status: number): void =>
      state.endRequest({
        id: record.id,
        method: request.method,
        path: request.path,
        status,
        receivedAt,
        respondedAt: preciseNow(),
        bytes: raw.bytes,
        items: record.items,
        accepted: record.accepted,
        rejected: record.rejected,
        duplicates: record.duplicates,
        skipped: record.skipped,
        fault: decision.label,
        headers: interestingHeaders(req.headers),
      })

    const applyFault = (action: FaultAction): void => {
      if (action.type === 'hang') {
        hanging.add(res)
        res.on('close', () => hanging.delete(res))
        log(0)
        return
      }
      if (action.type === 'reset') {
        log(0)
        req.socket.destroy()
        return
      }
      const response = faultResponse(action, definition)
      log(response.status)
      send(res, response)
    }

    if (decision.action !== undefined && !decision.afterAccept) return applyFault(decision.action)

    let response: SimulatorResponse
    if (badEncoding) response = { status: 400, body: { error: 'invalid gzip body' } }
    else if (tooLarge) response = definition.tooLarge(request)
    else response = definition.handle(request)

    if (decision.action !== undefined) return applyFault(decision.action)
    log(response.status)
    send(res, response)
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://simulator')
    let work: Promise<void>
    if (url.pathname === adminPrefix || url.pathname.startsWith(`${adminPrefix}/`)) work = handleAdmin(req, res, url)
    else if (url.pathname === '/metrics' && req.method === 'GET') {
      send(res, {
        status: 200,
        headers: { 'content-type': 'text/plain; version=0.0.4' },
        body: renderMetrics(definition.name, state),
      })
      work = Promise.resolve()
    } else work = handleApi(req, res, url)
    work.catch(() => {
      if (!res.headersSent && !res.destroyed) send(res, { status: 500, body: { error: 'simulator error' } })
    })
  })
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port

  return {
    name: definition.name,
    url: `http://${host}:${port}`,
    port,
    state,
    faults,
    rateLimits: definition.rateLimits,
    reset,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const res of hanging) res.destroy()
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      }),
  }
}
