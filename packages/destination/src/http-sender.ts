import { Agent, errors as undiciErrors, request } from 'undici'
import type { HttpRequest, HttpResponse } from './destination.ts'
import { PermanentError, RetryableError } from './errors.ts'

export interface HttpSenderOptions {
  /** Hostnames (optionally host:port) requests may go to; anything else is refused before connecting. */
  allowedHosts: readonly string[]
  /** Time to the response headers, and between body chunks. */
  timeoutMs: number
  /** Keep-alive sockets per origin. */
  connectionsPerOrigin: number
  /** Largest response body read; the rest is discarded (classifiers need status, headers and a short body). */
  maxResponseBytes?: number
}

/** Outbound HTTP over undici keep-alive pools (one per origin), with timeouts and a host allowlist. */
export class HttpSender {
  readonly #agent: Agent
  readonly #allowed: Set<string>
  readonly #timeoutMs: number
  readonly #maxResponseBytes: number

  constructor(options: HttpSenderOptions) {
    this.#agent = new Agent({
      connections: options.connectionsPerOrigin,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: { timeout: options.timeoutMs },
    })
    this.#allowed = new Set(options.allowedHosts.map((host) => host.toLowerCase()))
    this.#timeoutMs = options.timeoutMs
    this.#maxResponseBytes = options.maxResponseBytes ?? 64 * 1024
  }

  isAllowed(url: string): boolean {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return false
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return false
    return this.#allowed.has(parsed.hostname.toLowerCase()) || this.#allowed.has(parsed.host.toLowerCase())
  }

  /** Resolves with any HTTP response; throws RetryableError on network errors and timeouts. */
  async send(req: HttpRequest, signal?: AbortSignal): Promise<HttpResponse> {
    if (!this.isAllowed(req.url)) {
      throw new PermanentError(`host of ${new URL(req.url).origin} is not on the allowlist`, 'LS_DEST_HOST_NOT_ALLOWED')
    }
    try {
      const response = await request(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        dispatcher: this.#agent,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal,
      })
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        if (size < this.#maxResponseBytes) chunks.push(chunk)
        size += chunk.length
      }
      return {
        status: response.statusCode,
        headers: response.headers,
        body: Buffer.concat(chunks).subarray(0, this.#maxResponseBytes).toString('utf8'),
      }
    } catch (err) {
      if (signal?.aborted) throw err
      const timedOut =
        err instanceof undiciErrors.HeadersTimeoutError ||
        err instanceof undiciErrors.BodyTimeoutError ||
        err instanceof undiciErrors.ConnectTimeoutError
      const reason = timedOut ? `timeout after ${this.#timeoutMs} ms` : `network error: ${(err as Error).message}`
      throw new RetryableError(reason, undefined, undefined, {
        cause: err,
        code: timedOut ? 'LS_DEST_TIMEOUT' : 'LS_DEST_NETWORK',
      })
    }
  }

  async close(): Promise<void> {
    await this.#agent.close()
  }
}
