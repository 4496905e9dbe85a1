import { connect, type Socket } from 'node:net'
import { connect as connectTls, type ConnectionOptions } from 'node:tls'
import { type Message } from '../../src/protocol/codec.ts'
import { decodeResponseBody, encodeRequest } from '../../src/protocol/frames.ts'
import { API_BY_KEY } from '../../src/protocol/messages/index.ts'

// A minimal Kafka client over one socket, built on the broker's own codec tables, for tests that need
// exact control of what goes on the wire (duplicate batches, unsupported versions, pipelining).
export class RawClient {
  private readonly socket: Socket
  private buffer = Buffer.alloc(0)
  private readonly waiters: ((frame: Buffer) => void)[] = []
  private correlationId = 1
  closed = false
  // Correlation ids of the responses in the order they arrived on the socket.
  readonly arrivals: number[] = []

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      while (this.buffer.length >= 4) {
        const size = this.buffer.readInt32BE(0)
        if (this.buffer.length < size + 4) break
        const frame = this.buffer.subarray(4, size + 4)
        this.buffer = this.buffer.subarray(size + 4)
        this.arrivals.push(frame.readInt32BE(0))
        this.waiters.shift()?.(frame)
      }
    })
    socket.on('close', () => {
      this.closed = true
    })
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new RawClient(socket)
  }

  static async connectTls(port: number, options: ConnectionOptions): Promise<RawClient> {
    const socket = connectTls({ host: '127.0.0.1', port, ...options })
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve)
      socket.once('error', reject)
    })
    return new RawClient(socket)
  }

  /** Resolves once the broker has closed the connection. */
  async whenClosed(): Promise<void> {
    if (this.closed) return
    await new Promise<void>((resolve) => this.socket.once('close', () => resolve()))
  }

  // Sends raw bytes and resolves with the next response frame (correlation id first).
  sendRaw(frame: Buffer): Promise<Buffer> {
    const p = new Promise<Buffer>((resolve) => this.waiters.push(resolve))
    this.socket.write(frame)
    return p
  }

  sendNoResponse(apiKey: number, apiVersion: number, body: Message): void {
    const def = API_BY_KEY.get(apiKey)!
    const header = { apiKey, apiVersion, correlationId: this.correlationId++, clientId: 'raw-client' }
    this.socket.write(encodeRequest(def, header, body))
  }

  async request(apiKey: number, apiVersion: number, body: Message): Promise<{ correlationId: number; body: Message }> {
    const def = API_BY_KEY.get(apiKey)!
    const correlationId = this.correlationId++
    const frame = await this.sendRaw(
      encodeRequest(def, { apiKey, apiVersion, correlationId, clientId: 'raw-client' }, body),
    )
    return decodeResponseBody(def, apiVersion, frame)
  }

  close(): void {
    this.socket.destroy()
  }
}
