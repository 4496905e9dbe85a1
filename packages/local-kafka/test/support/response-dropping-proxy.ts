import { connect, createServer, type Server, type Socket } from 'node:net'

// A TCP proxy in front of the broker that, once, lets a request of the given API key through and then
// cuts the client's connection instead of delivering the response: the broker has done the work, the
// client sees a network error and retries. Used to prove that a retried idempotent batch is stored once.
export class ResponseDroppingProxy {
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  dropped = 0
  port = 0
  // Set once the broker behind the proxy is running (it must know the proxy's port first).
  upstreamPort = 0

  private constructor(server: Server) {
    this.server = server
  }

  static async start(apiKey: number): Promise<ResponseDroppingProxy> {
    const proxy: ResponseDroppingProxy = new ResponseDroppingProxy(
      createServer((client) => {
        const upstream = connect({ host: '127.0.0.1', port: proxy.upstreamPort })
        proxy.sockets.add(client)
        proxy.sockets.add(upstream)
        const watched = new Set<number>()
        let inBuf = Buffer.alloc(0)
        let outBuf = Buffer.alloc(0)
        client.on('data', (chunk) => {
          inBuf = Buffer.concat([inBuf, chunk])
          while (inBuf.length >= 12 && inBuf.length >= inBuf.readInt32BE(0) + 4) {
            const size = inBuf.readInt32BE(0)
            if (inBuf.readInt16BE(4) === apiKey && proxy.dropped === 0) watched.add(inBuf.readInt32BE(8))
            inBuf = inBuf.subarray(size + 4)
          }
          upstream.write(chunk)
        })
        upstream.on('data', (chunk) => {
          outBuf = Buffer.concat([outBuf, chunk])
          while (outBuf.length >= 8 && outBuf.length >= outBuf.readInt32BE(0) + 4) {
            const size = outBuf.readInt32BE(0)
            const correlationId = outBuf.readInt32BE(4)
            const frame = outBuf.subarray(0, size + 4)
            outBuf = outBuf.subarray(size + 4)
            if (watched.has(correlationId) && proxy.dropped === 0) {
              proxy.dropped++
              client.destroy()
              upstream.destroy()
              return
            }
            client.write(frame)
          }
        })
        client.on('close', () => upstream.destroy())
        upstream.on('close', () => client.destroy())
        client.on('error', () => {})
        upstream.on('error', () => {})
      }),
    )
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve))
    const addr = proxy.server.address()
    proxy.port = typeof addr === 'object' && addr !== null ? addr.port : 0
    return proxy
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
