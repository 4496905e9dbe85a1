import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { TopicStore } from '../storage/topic-store.ts'
import { Connection } from './connection.ts'
import { type BrokerConfig, type BrokerContext, type LogFn } from './context.ts'
import { type GroupApi } from './group-api.ts'
import { handlerTable } from './handlers/index.ts'
import { SaslAuthority, type SaslUsersConfig } from './sasl/mechanisms.ts'

export interface BrokerTlsOptions {
  /** PEM server certificate (chain) and its private key. */
  cert: string | Buffer
  key: string | Buffer
  /** PEM CA: when given, clients must present a certificate it signed (mutual TLS). */
  clientCa?: string | Buffer
}

export interface BrokerOptions {
  port: number
  // Port announced in Metadata and FindCoordinator (Kafka's advertised listener); default: the bound port.
  advertisedPort?: number
  // null: keep everything in memory.
  dataDir: string | null
  defaultPartitions?: number
  autoCreateTopics?: boolean
  retentionMs?: number
  retentionBytes?: number
  segmentBytes?: number
  maxMessageBytes?: number
  maxRequestBytes?: number
  fsync?: boolean
  retentionCheckMs?: number
  log: LogFn
  // Builds the group coordinator; absent: group APIs answer COORDINATOR_NOT_AVAILABLE.
  groups?: () => GroupApi
  // The listener speaks TLS (SSL, or SASL_SSL with sasl).
  tls?: BrokerTlsOptions
  // Clients must authenticate (SASL_PLAINTEXT, or SASL_SSL with tls).
  sasl?: SaslUsersConfig
}

/** The listener's protocol as Kafka names it. */
export function securityProtocol(opts: Pick<BrokerOptions, 'tls' | 'sasl'>): string {
  return `${opts.sasl ? 'SASL_' : ''}${opts.tls ? 'SSL' : 'PLAINTEXT'}`
}

const HOST = '127.0.0.1'
const INDEX_FLUSH_MS = 1000

export class Broker {
  private readonly opts: BrokerOptions
  private readonly store: TopicStore
  private readonly connections = new Set<Connection>()
  private server: Server | null = null
  private groups: GroupApi | null = null
  private timers: NodeJS.Timeout[] = []
  private loopDelay: ReturnType<typeof monitorEventLoopDelay> | null = null
  private producerId = Date.now()
  port = 0

  constructor(opts: BrokerOptions) {
    this.opts = opts
    this.store = new TopicStore({
      dataDir: opts.dataDir,
      segmentBytes: opts.segmentBytes ?? 64 * 1024 * 1024,
      fsync: opts.fsync ?? false,
      log: opts.log,
    })
  }

  async start(): Promise<number> {
    this.store.load()
    this.groups = this.opts.groups?.() ?? null
    await this.groups?.load()
    const config: BrokerConfig = {
      host: HOST,
      port: 0,
      clusterId: 'local-kafka',
      defaultPartitions: this.opts.defaultPartitions ?? 1,
      autoCreateTopics: this.opts.autoCreateTopics ?? true,
      retentionMs: this.opts.retentionMs ?? 7 * 24 * 3600 * 1000,
      retentionBytes: this.opts.retentionBytes ?? -1,
      segmentBytes: this.opts.segmentBytes ?? 64 * 1024 * 1024,
      maxMessageBytes: this.opts.maxMessageBytes ?? 16 * 1024 * 1024,
      fsync: this.opts.fsync ?? false,
    }
    const ctx: BrokerContext = {
      config,
      store: this.store,
      log: this.opts.log,
      nextProducerId: () => this.producerId++,
      sasl: this.opts.sasl ? new SaslAuthority(this.opts.sasl) : null,
    }
    const handlers = handlerTable(this.groups)
    const maxRequestBytes = this.opts.maxRequestBytes ?? 100 * 1024 * 1024
    const accept = (socket: Socket) => {
      const c = new Connection(socket, ctx, handlers, maxRequestBytes)
      this.connections.add(c)
      socket.on('close', () => this.connections.delete(c))
    }
    const tls = this.opts.tls
    const server = tls
      ? createTlsServer(
          {
            cert: tls.cert,
            key: tls.key,
            minVersion: 'TLSv1.2',
            ...(tls.clientCa !== undefined ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
          },
          accept,
        )
      : createServer(accept)
    // A client speaking plaintext to the TLS listener, or failing the handshake: its socket is closed.
    server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
      this.opts.log('info', 'TLS handshake failed', { code: err.code ?? 'unknown', reason: err.message.slice(0, 200) })
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.opts.port, HOST, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const addr = server.address()
    this.port = typeof addr === 'object' && addr !== null ? addr.port : this.opts.port
    config.port = this.opts.advertisedPort ?? this.port
    const retentionCheck = setInterval(() => {
      this.store.applyRetention(Date.now(), config.retentionMs, config.retentionBytes)
    }, this.opts.retentionCheckMs ?? 5000)
    const indexFlush = setInterval(() => this.store.flushIndexes(), INDEX_FLUSH_MS)
    // Clients time out a fetch at max wait + 100 ms, so a stalled event loop is worth a warning.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    loopDelay.enable()
    this.loopDelay = loopDelay
    const loopCheck = setInterval(() => {
      const maxMs = loopDelay.max / 1e6
      if (maxMs > 100) this.opts.log('warn', 'event loop stalled', { maxMs: Math.round(maxMs) })
      loopDelay.reset()
    }, 5000)
    this.timers = [retentionCheck, indexFlush, loopCheck]
    for (const t of this.timers) t.unref()
    return this.port
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t)
    this.loopDelay?.disable()
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
    for (const c of this.connections) c.destroy()
    await closed
    await this.groups?.close()
    this.store.close()
  }
}
