import { type Socket } from 'node:net'
import { type Message } from '../protocol/codec.ts'
import { ErrorCode } from '../protocol/error-codes.ts'
import { decodeRequestBody, decodeRequestHeader, encodeResponse, type RequestHeader } from '../protocol/frames.ts'
import { API_BY_KEY } from '../protocol/messages/index.ts'
import { Reader } from '../protocol/reader.ts'
import { type ApiDef } from '../protocol/schema.ts'
import { type BrokerContext, type ConnectionContext, type Handler } from './context.ts'
import { apiVersionsBody } from './handlers/api-versions.ts'
import { type SaslSession } from './sasl/mechanisms.ts'

const API_VERSIONS = 18
const SASL_HANDSHAKE = 17
const SASL_AUTHENTICATE = 36

// Where a connection is in SASL authentication. 'raw': after a v0 handshake the tokens come as bare frames.
type AuthState = 'handshake' | 'authenticate' | 'raw' | 'done'

// Pause reading when this much is queued, so a client that pipelines faster than we answer is held back
// by TCP instead of by our memory.
const MAX_QUEUED_FRAMES = 64
const MAX_BUFFERED_OUTPUT = 16 * 1024 * 1024
// A connection gives the event loop back after this much synchronous work, so one client that pipelines
// a burst of large produces cannot delay other connections' fetch deadlines.
const SLICE_MS = 5

// One client connection. Requests are processed strictly one at a time in arrival order (Kafka mutes a
// channel until its response is written), so responses leave in request order even when a handler parks.
export class Connection {
  private readonly socket: Socket
  private readonly ctx: BrokerContext
  private readonly handlers: Map<number, Handler>
  private readonly maxRequestBytes: number
  private readonly conn: ConnectionContext
  private pending: Buffer[] = []
  private pendingBytes = 0
  private readonly frames: Buffer[] = []
  private busy = false
  private yielded = false
  private ending = false
  private auth: AuthState
  private session: SaslSession | null = null

  constructor(socket: Socket, ctx: BrokerContext, handlers: Map<number, Handler>, maxRequestBytes: number) {
    this.socket = socket
    this.ctx = ctx
    this.handlers = handlers
    this.maxRequestBytes = maxRequestBytes
    this.conn = {
      clientId: '',
      clientHost: socket.remoteAddress ?? '',
      onClose: new Set(),
      closed: false,
      fetchRotation: 0,
    }
    this.auth = ctx.sasl === null ? 'done' : 'handshake'
    socket.setNoDelay(true)
    socket.on('data', (chunk) => this.onData(chunk))
    socket.on('drain', () => this.pump())
    socket.on('error', (err) => ctx.log('debug', 'socket error', { err: err.message }))
    socket.on('close', () => this.onClose())
  }

  private onClose(): void {
    this.conn.closed = true
    for (const cleanup of [...this.conn.onClose]) cleanup()
    this.conn.onClose.clear()
    this.frames.length = 0
  }

  destroy(): void {
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    while (this.pendingBytes >= 4) {
      const head = this.pending[0]!.length >= 4 ? this.pending[0]! : Buffer.concat(this.pending)
      const size = head.readInt32BE(0)
      // A request has at least its header; a bare SASL token (after a v0 handshake) may be empty.
      if (size < (this.auth === 'raw' ? 0 : 8) || size > this.maxRequestBytes) {
        this.ctx.log('warn', 'closing connection: bad request size', { size })
        this.socket.destroy()
        return
      }
      if (this.pendingBytes < size + 4) break
      const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes)
      this.frames.push(all.subarray(4, size + 4))
      const rest = all.subarray(size + 4)
      this.pending = rest.length > 0 ? [rest] : []
      this.pendingBytes = rest.length
    }
    if (this.frames.length >= MAX_QUEUED_FRAMES) this.socket.pause()
    this.pump()
  }

  private pump(): void {
    if (this.yielded) return
    const started = performance.now()
    while (!this.busy && !this.conn.closed && !this.ending && this.frames.length > 0) {
      if (this.socket.writableLength > MAX_BUFFERED_OUTPUT) return // resumes on 'drain'
      if (performance.now() - started > SLICE_MS) {
        this.yielded = true
        setImmediate(() => {
          this.yielded = false
          this.pump()
        })
        return
      }
      const frame = this.frames.shift()!
      if (this.frames.length < MAX_QUEUED_FRAMES / 2 && this.socket.isPaused()) this.socket.resume()
      this.process(frame)
    }
  }

  private process(frame: Buffer): void {
    if (this.auth === 'raw') return this.rawSaslToken(frame)
    const r = new Reader(frame)
    let header: RequestHeader
    try {
      header = decodeRequestHeader(r)
    } catch {
      this.ctx.log('warn', 'closing connection: unreadable request header')
      this.socket.destroy()
      return
    }
    this.conn.clientId = header.clientId ?? ''
    if (header.apiKey === SASL_HANDSHAKE || header.apiKey === SASL_AUTHENTICATE) return this.sasl(header, r)
    if (this.auth !== 'done' && header.apiKey !== API_VERSIONS) {
      // Kafka closes a connection that sends anything but ApiVersions and SASL before authenticating.
      this.ctx.log('info', 'closing connection: request before SASL authentication', {
        apiKey: header.apiKey,
        clientId: header.clientId,
      })
      this.socket.destroy()
      return
    }
    const def = API_BY_KEY.get(header.apiKey)
    const handler = this.handlers.get(header.apiKey)
    if (def === undefined || handler === undefined) {
      this.ctx.log('warn', 'unsupported API key', { apiKey: header.apiKey, clientId: header.clientId })
      return this.writeRaw(header.correlationId, ErrorCode.UNSUPPORTED_VERSION)
    }
    const version = header.apiVersion
    if (version < def.minVersion || version > def.maxVersion) {
      this.ctx.log('info', 'unsupported API version', { api: def.name, version, clientId: header.clientId })
      // ApiVersions answers in the v0 layout with the full list so the client can pick a version.
      if (def.key === API_VERSIONS)
        return this.write(
          def,
          0,
          header.correlationId,
          apiVersionsBody(ErrorCode.UNSUPPORTED_VERSION, this.ctx.sasl !== null),
        )
      return this.write(def, version, header.correlationId, { errorCode: ErrorCode.UNSUPPORTED_VERSION })
    }
    let body: Message
    try {
      body = decodeRequestBody(def, version, r)
    } catch (err) {
      this.ctx.log('warn', 'closing connection: malformed request', { api: def.name, version, err: String(err) })
      this.socket.destroy()
      return
    }
    let result
    try {
      result = handler(this.ctx, body, version, this.conn)
    } catch (err) {
      return this.fail(def, version, header.correlationId, err)
    }
    if (result instanceof Promise) {
      this.busy = true
      result.then(
        (msg) => {
          this.busy = false
          if (msg !== null) this.write(def, version, header.correlationId, msg)
          this.pump()
        },
        (err: unknown) => {
          this.busy = false
          this.fail(def, version, header.correlationId, err)
          this.pump()
        },
      )
      return
    }
    if (result !== null) this.write(def, version, header.correlationId, result)
  }

  // SaslHandshake and SaslAuthenticate: the connection's own state machine, not a broker handler.
  private sasl(header: RequestHeader, r: Reader): void {
    const def = API_BY_KEY.get(header.apiKey)!
    const version = header.apiVersion
    if (version < def.minVersion || version > def.maxVersion) {
      return this.write(def, version, header.correlationId, { errorCode: ErrorCode.UNSUPPORTED_VERSION })
    }
    let body: Message
    try {
      body = decodeRequestBody(def, version, r)
    } catch (err) {
      this.ctx.log('warn', 'closing connection: malformed request', { api: def.name, version, err: String(err) })
      this.socket.destroy()
      return
    }
    const authority = this.ctx.sasl
    const mechanisms = authority?.mechanisms ?? []
    if (header.apiKey === SASL_HANDSHAKE) {
      if (authority === null || this.auth !== 'handshake') {
        return this.endWith(def, version, header.correlationId, { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms })
      }
      const mechanism = body.mechanism as string
      const session = authority.session(mechanism)
      if (session === null) {
        this.ctx.log('info', 'SASL mechanism not enabled', { mechanism: mechanism.slice(0, 40) })
        return this.endWith(def, version, header.correlationId, {
          errorCode: ErrorCode.UNSUPPORTED_SASL_MECHANISM,
          mechanisms,
        })
      }
      this.session = session
      this.auth = version === 0 ? 'raw' : 'authenticate'
      return this.write(def, version, header.correlationId, { errorCode: 0, mechanisms })
    }
    if (this.auth !== 'authenticate' || this.session === null) {
      return this.endWith(def, version, header.correlationId, {
        errorCode: ErrorCode.ILLEGAL_SASL_STATE,
        errorMessage: `Unexpected SaslAuthenticate request`,
        authBytes: Buffer.alloc(0),
        sessionLifetimeMs: 0,
      })
    }
    const step = this.session.step(body.authBytes as Buffer)
    if ('failed' in step) {
      this.ctx.log('info', 'SASL authentication failed', { clientHost: this.conn.clientHost, reason: step.failed })
      return this.endWith(def, version, header.correlationId, {
        errorCode: ErrorCode.SASL_AUTHENTICATION_FAILED,
        errorMessage: step.failed,
        authBytes: Buffer.alloc(0),
        sessionLifetimeMs: 0,
      })
    }
    if (step.done) this.authenticated()
    this.write(def, version, header.correlationId, {
      errorCode: 0,
      errorMessage: null,
      authBytes: step.response,
      sessionLifetimeMs: 0,
    })
  }

  // After a v0 SaslHandshake: bare tokens both ways; a failure closes the connection (Kafka has no error frame).
  private rawSaslToken(frame: Buffer): void {
    const step = this.session!.step(frame)
    if ('failed' in step) {
      this.ctx.log('info', 'SASL authentication failed', { clientHost: this.conn.clientHost, reason: step.failed })
      this.socket.destroy()
      return
    }
    if (step.done) this.authenticated()
    const size = Buffer.alloc(4)
    size.writeInt32BE(step.response.length, 0)
    this.socket.write(Buffer.concat([size, step.response]))
  }

  private authenticated(): void {
    this.auth = 'done'
    this.session = null
  }

  // Answers, then closes once the answer is flushed; nothing after it on this connection is read.
  private endWith(def: ApiDef, version: number, correlationId: number, body: Message): void {
    this.write(def, version, correlationId, body)
    this.ending = true
    this.frames.length = 0
    this.socket.end()
  }

  private fail(def: ApiDef, version: number, correlationId: number, err: unknown): void {
    this.ctx.log('error', 'request handler failed', {
      api: def.name,
      version,
      err: err instanceof Error ? err.stack : String(err),
    })
    this.write(def, version, correlationId, { errorCode: ErrorCode.UNKNOWN_SERVER_ERROR })
  }

  private write(def: ApiDef, version: number, correlationId: number, body: Message): void {
    if (this.conn.closed) return
    const chunks = encodeResponse(def, version, correlationId, body)
    if (chunks.length === 1) {
      this.socket.write(chunks[0]!)
      return
    }
    this.socket.cork()
    for (const c of chunks) this.socket.write(c)
    this.socket.uncork()
  }

  // For an API key we do not know: correlation id and an error code is all we can say.
  private writeRaw(correlationId: number, errorCode: number): void {
    const b = Buffer.alloc(10)
    b.writeInt32BE(6, 0)
    b.writeInt32BE(correlationId, 4)
    b.writeInt16BE(errorCode, 8)
    this.socket.write(b)
  }
}
