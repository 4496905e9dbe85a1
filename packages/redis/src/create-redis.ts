import { describeRedis, StartupError, type RedisConnection, type TlsMaterial } from '@lookstream/config'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import { type ConnectionOptions } from 'node:tls'

/** Every Redis connection lookstream opens: a server (standalone or found through Sentinel) or a Cluster. */
export type RedisClient = Redis | Cluster

export interface CreateRedisOptions {
  /** CLIENT SETNAME, to find the service in CLIENT LIST. */
  connectionName?: string
  /**
   * Fail commands at once while disconnected instead of queueing them (the caller pauses and retries, as the
   * destinations' Redis gate does). Default false.
   */
  failFast?: boolean
  /** Retries of one command across reconnects (ioredis' maxRetriesPerRequest); default 2. */
  maxRetriesPerRequest?: number
  /** Fails a command that has no answer after this many milliseconds (ioredis' commandTimeout); default none. */
  commandTimeout?: number
}

function tlsOptions(tls: TlsMaterial): ConnectionOptions {
  const options: ConnectionOptions = { rejectUnauthorized: true }
  if (tls.ca !== undefined) options.ca = [tls.ca]
  if (tls.cert !== undefined) options.cert = tls.cert
  if (tls.key !== undefined) options.key = tls.key
  if (tls.servername !== undefined) options.servername = tls.servername
  return options
}

// Reconnect quickly at first, then every second: an outage pauses delivery and ends by itself.
const reconnectDelay = (times: number) => Math.min(100 * times, 1000)

/** ioredis statuses that come before `end` on the way to it. */
const STATUSES_BEFORE_END = ['wait', 'connecting', 'connect', 'ready', 'close', 'reconnecting'] as const

/**
 * A client found through Sentinel that connects again when ioredis ends it without its owner closing it.
 *
 * ioredis' failover detector disconnects the client's connector when the sentinels announce a new master
 * (+switch-master). If that comes while the client is between attempts to reach a master that went down (asking the
 * sentinels where the master is), the attempt fails with "Connection is closed." and ioredis sets the client to
 * `end` for good: no further attempt, and every later command refused until the process restarts. Such an end
 * comes straight from `connecting`; an end its owner asked for comes through `disconnect()` or through `close`
 * (QUIT). Any other end from `connecting` gets a new attempt after the usual reconnect delay.
 */
class SentinelClient extends Redis {
  #closedByOwner = false

  constructor(options: RedisOptions) {
    super(options)
    let previous: string = this.status
    for (const status of STATUSES_BEFORE_END) this.on(status, () => (previous = status))
    let attempts = 0
    this.on('ready', () => (attempts = 0))
    this.on('end', () => {
      if (this.#closedByOwner || previous !== 'connecting') return
      setTimeout(() => {
        if (!this.#closedByOwner && this.status === 'end') this.connect().catch(() => undefined)
      }, reconnectDelay(++attempts))
    })
  }

  override disconnect(reconnect = false): void {
    if (!reconnect) this.#closedByOwner = true
    super.disconnect(reconnect)
  }
}

/** The one place a Redis client is built, from resolveRedisSettings(config). */
export function createRedis(connection: RedisConnection, options: CreateRedisOptions = {}): RedisClient {
  const common: RedisOptions = {
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? 2,
    enableOfflineQueue: !(options.failFast ?? false),
    retryStrategy: reconnectDelay,
    // A Redis that accepts the TCP connection but never answers must not hang start-up.
    connectTimeout: 5000,
  }
  if (options.connectionName !== undefined) common.connectionName = options.connectionName
  if (options.commandTimeout !== undefined) common.commandTimeout = options.commandTimeout
  if (connection.username !== undefined) common.username = connection.username
  if (connection.password !== undefined) common.password = connection.password
  if (connection.tls !== null) common.tls = tlsOptions(connection.tls)

  if (connection.mode === 'cluster') {
    const { enableOfflineQueue, ...redisOptions } = common
    const clusterOptions: ClusterOptions = {
      redisOptions,
      // ioredis' Cluster holds commands in its own queue while it has no node to send them to, and commandTimeout
      // only starts once a node has the command: with every master down they would wait for the whole outage.
      // A client whose commands must be bounded fails them at once instead.
      enableOfflineQueue: options.commandTimeout === undefined ? (enableOfflineQueue ?? true) : false,
      clusterRetryStrategy: reconnectDelay,
      slotsRefreshTimeout: 2000,
      // Nodes announce themselves by IP; keep the configured TLS server name check against the certificate.
      ...(connection.tls !== null ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
    }
    return new Cluster(connection.nodes, clusterOptions)
  }
  if (connection.mode === 'sentinel') {
    const sentinel = connection.sentinel!
    return new SentinelClient({
      ...common,
      db: connection.db,
      sentinels: connection.nodes,
      name: sentinel.masterName,
      ...(sentinel.username !== undefined ? { sentinelUsername: sentinel.username } : {}),
      ...(sentinel.password !== undefined ? { sentinelPassword: sentinel.password } : {}),
      ...(connection.tls !== null ? { enableTLSForSentinelMode: true, sentinelTLS: tlsOptions(connection.tls) } : {}),
      sentinelRetryStrategy: reconnectDelay,
      // Reconnect as soon as the sentinels announce a new master (+switch-master): after a planned failover the old
      // master keeps running and accepting writes for seconds before the sentinels demote it, and those are lost.
      failoverDetector: true,
    })
  }
  return new Redis({ ...common, host: connection.nodes[0]!.host, port: connection.nodes[0]!.port, db: connection.db })
}

const AUTH_REFUSED = /WRONGPASS|NOAUTH|invalid username-password|NOPERM|user is disabled/i
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
])

// ioredis reports a sentinel it could not use only by message ("All sentinels are unreachable. … Last error: …"),
// without the TLS error's code: these are Node's messages for the codes above.
const TLS_MESSAGES: [RegExp, string][] = [
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/unable to get local issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/does not match certificate's altnames/i, 'ERR_TLS_CERT_ALTNAME_INVALID'],
  [/wrong version number/i, 'ERR_SSL_WRONG_VERSION_NUMBER'],
]
const SENTINEL_ERROR = /sentinels? (?:are |is )?unreachable|failed to connect to sentinel/i

function tlsCode(e: Error): string | undefined {
  const code = (e as NodeJS.ErrnoException).code
  if (code !== undefined && TLS_CODES.has(code)) return code
  return TLS_MESSAGES.find(([pattern]) => pattern.test(e.message))?.[1]
}

function causes(err: unknown): Error[] {
  const out: Error[] = []
  let current: unknown = err
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    out.push(current)
    current = (current as { lastNodeError?: unknown }).lastNodeError ?? current.cause
  }
  return out
}

/**
 * A start-up error naming the setting to fix, or null for an outage (Redis down: keep trying). `fromSentinel`: the
 * error came from a connection to a sentinel itself.
 */
export function classifyRedisError(
  err: unknown,
  connection: RedisConnection,
  fromSentinel = false,
): StartupError | null {
  const target = describeRedis(connection)
  for (const e of causes(err)) {
    // A sentinel's refusal: ioredis wraps it as "All sentinels are unreachable. … Last error: <reply>".
    const atSentinel = connection.mode === 'sentinel' && (fromSentinel || SENTINEL_ERROR.test(e.message))
    if (AUTH_REFUSED.test(e.message)) {
      // The reply names no secret ("WRONGPASS invalid username-password pair or user is disabled.").
      const reply = (/Last error: ([^.]*)/.exec(e.message)?.[1] ?? e.message).split('.')[0]
      const credentials = atSentinel
        ? connection.sentinel?.password === undefined
          ? 'the sentinels require credentials: set REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD (or REDIS_SENTINEL_PASSWORD_FILE)'
          : 'check REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD (or REDIS_SENTINEL_PASSWORD_FILE)'
        : connection.password === undefined
          ? 'Redis requires credentials: set REDIS_USERNAME and REDIS_PASSWORD (or REDIS_PASSWORD_FILE)'
          : 'check REDIS_USERNAME and REDIS_PASSWORD (or REDIS_PASSWORD_FILE, or the credentials in REDIS_URL)'
      return new StartupError(
        'LS_REDIS_AUTH_FAILED',
        `${target} refused the connection${atSentinel ? ' at the sentinels' : ''} (${reply}): ${credentials}`,
      )
    }
    const code = tlsCode(e)
    if (code !== undefined) {
      const fix =
        code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? 'set REDIS_TLS_SERVERNAME to a name in the certificate, or connect by that name'
          : code === 'ERR_SSL_WRONG_VERSION_NUMBER'
            ? 'the server does not speak TLS there: use redis:// or its TLS port'
            : 'set REDIS_TLS_CA_FILE to the CA that signed the Redis certificate'
      const where = atSentinel ? ' with a sentinel' : ''
      return new StartupError('LS_REDIS_TLS_FAILED', `${target}: TLS handshake${where} failed (${code}): ${fix}`)
    }
  }
  return null
}

/**
 * Waits for the first connection. Resolves 'ready', or 'unavailable' after timeoutMs when Redis is simply not
 * reachable (callers keep going and recover when it comes); rejects with a StartupError when Redis answers but
 * refuses the credentials or the TLS handshake fails, which retrying cannot fix.
 */
export async function checkRedisAtStart(
  client: RedisClient,
  connection: RedisConnection,
  timeoutMs = 5000,
): Promise<'ready' | 'unavailable'> {
  if (client.status === 'ready') return 'ready'
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer)
      client.off('ready', onReady)
      client.off('error', onError)
    }
    const onReady = () => {
      done()
      resolve('ready')
    }
    const onError = (err: unknown) => {
      const fatal = classifyRedisError(err, connection)
      if (fatal === null) return
      done()
      reject(fatal)
    }
    const timer = setTimeout(() => {
      done()
      resolve('unavailable')
    }, timeoutMs)
    client.on('ready', onReady)
    client.on('error', onError)
    if (connection.mode === 'sentinel') {
      void probeSentinels(connection).then((fatal) => {
        if (fatal === null || client.status === 'ready') return
        done()
        reject(fatal)
      })
    }
  })
}

/**
 * ioredis reports a sentinel it could not use as "Connection is closed", losing a TLS failure's cause: ask each
 * sentinel once, directly, and classify what it answers. Null when one answers or none refuses for good.
 */
async function probeSentinels(connection: RedisConnection): Promise<StartupError | null> {
  const sentinel = connection.sentinel!
  let fatal: StartupError | null = null
  for (const node of connection.nodes) {
    const probe = new Redis({
      host: node.host,
      port: node.port,
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      connectTimeout: 5000,
      ...(sentinel.username !== undefined ? { username: sentinel.username } : {}),
      ...(sentinel.password !== undefined ? { password: sentinel.password } : {}),
      ...(connection.tls !== null ? { tls: tlsOptions(connection.tls) } : {}),
    })
    let seen: unknown = null
    probe.on('error', (err: unknown) => {
      seen ??= err
    })
    try {
      await probe.connect()
      await probe.ping()
      return null
    } catch (err) {
      fatal ??= classifyRedisError(seen ?? err, connection, true) ?? classifyRedisError(err, connection, true)
    } finally {
      probe.disconnect()
    }
  }
  return fatal
}
