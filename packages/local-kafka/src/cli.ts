import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Broker, securityProtocol, type BrokerTlsOptions } from './broker/broker.ts'
import { type LogLevel } from './broker/context.ts'
import {
  addUser,
  isSaslMechanism,
  parseUsers,
  SASL_MECHANISMS,
  type SaslMechanism,
  type SaslUsersConfig,
} from './broker/sasl/mechanisms.ts'
import { GroupCoordinator } from './group/index.ts'
import { createLogger } from './logger.ts'

const USAGE = `usage: local-kafka [--port N] [--data-dir DIR | --in-memory] [options]
  --port N                         TCP port on 127.0.0.1 (0 = any free port; default 9092)
  --advertised-port N              port announced to clients, e.g. a proxy's (default: the bound port)
  --data-dir DIR                   where topics, logs and committed offsets live (default .data/local-kafka)
  --in-memory                      keep everything in memory (nothing survives a restart)
  --partitions N                   partitions of auto-created topics (default 1)
  --no-auto-create                 do not create topics on Metadata requests
  --retention-ms N                 delete segments whose newest record is older (default 604800000, -1 = off)
  --retention-bytes N              per-partition size limit, whole old segments deleted (default -1 = off)
  --segment-bytes N                roll a new segment after this many bytes (default 67108864)
  --retention-check-ms N           how often retention runs (default 5000)
  --max-message-bytes N            largest record batch accepted (default 16777216)
  --initial-rebalance-delay-ms N   delay before the first rebalance of a new group (default 0)
  --fsync                          fsync the log before acknowledging a produce (machine-crash safety)
  --log-level L                    debug | info | warn | error | silent (default info)
  --tls-cert FILE --tls-key FILE   serve TLS with this PEM certificate (chain) and key (SSL / SASL_SSL)
  --tls-client-ca FILE             require client certificates signed by this PEM CA (mutual TLS)
  --sasl-users-file FILE           require SASL; one name:password per line (# comments)
  --sasl-user NAME:PASSWORD        require SASL; a user (repeatable; prefer the file: flags show in ps)
  --sasl-mechanisms LIST           enabled mechanisms (default PLAIN,SCRAM-SHA-256,SCRAM-SHA-512)
  --exit-with-parent               stop when stdin closes (the spawning process died)`

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isSafeInteger(n)) {
    console.error(`local-kafka: --${name} must be an integer, got '${value}'\n${USAGE}`)
    process.exit(2)
  }
  return n
}

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        port: { type: 'string' },
        'advertised-port': { type: 'string' },
        'data-dir': { type: 'string' },
        'in-memory': { type: 'boolean', default: false },
        partitions: { type: 'string' },
        'no-auto-create': { type: 'boolean', default: false },
        'retention-ms': { type: 'string' },
        'retention-bytes': { type: 'string' },
        'segment-bytes': { type: 'string' },
        'retention-check-ms': { type: 'string' },
        'max-message-bytes': { type: 'string' },
        'initial-rebalance-delay-ms': { type: 'string' },
        fsync: { type: 'boolean', default: false },
        'exit-with-parent': { type: 'boolean', default: false },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', default: false },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-client-ca': { type: 'string' },
        'sasl-users-file': { type: 'string' },
        'sasl-user': { type: 'string', multiple: true },
        'sasl-mechanisms': { type: 'string' },
      },
      strict: true,
    })
  } catch (err) {
    console.error(`local-kafka: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`)
    process.exit(2)
  }
}
const { values } = parseCommandLine()

if (values.help) {
  console.log(USAGE)
  process.exit(0)
}

const logLevel = values['log-level']
if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) {
  console.error(`local-kafka: unknown --log-level '${logLevel}'\n${USAGE}`)
  process.exit(2)
}
const log = createLogger(logLevel as LogLevel | 'silent')
const dataDir = values['in-memory'] ? null : (values['data-dir'] ?? '.data/local-kafka')
const initialRebalanceDelayMs = int('initial-rebalance-delay-ms', values['initial-rebalance-delay-ms'], 0)

function usage(message: string): never {
  console.error(`local-kafka: ${message}\n${USAGE}`)
  process.exit(2)
}

function readOption(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    return usage(`--${name} ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
}

function tlsOptions(): BrokerTlsOptions | undefined {
  const cert = values['tls-cert']
  const key = values['tls-key']
  if (cert === undefined && key === undefined) {
    if (values['tls-client-ca'] !== undefined) usage('--tls-client-ca needs --tls-cert and --tls-key')
    return undefined
  }
  if (cert === undefined || key === undefined) usage('--tls-cert and --tls-key go together')
  const tls: BrokerTlsOptions = { cert: readOption('tls-cert', cert), key: readOption('tls-key', key) }
  const ca = values['tls-client-ca']
  if (ca !== undefined) tls.clientCa = readOption('tls-client-ca', ca)
  return tls
}

function saslOptions(): SaslUsersConfig | undefined {
  const file = values['sasl-users-file']
  const flags = values['sasl-user'] ?? []
  if (file === undefined && flags.length === 0) {
    if (values['sasl-mechanisms'] !== undefined) usage('--sasl-mechanisms needs --sasl-users-file or --sasl-user')
    return undefined
  }
  let users: Map<string, string>
  try {
    users = file === undefined ? new Map<string, string>() : parseUsers(readOption('sasl-users-file', file), file)
    flags.forEach((entry, i) => addUser(users, entry, `--sasl-user #${i + 1}`))
  } catch (err) {
    return usage((err as Error).message)
  }
  if (users.size === 0) usage('SASL is enabled but no user is given')
  const names = (values['sasl-mechanisms'] ?? SASL_MECHANISMS.join(',')).split(',').map((m) => m.trim().toUpperCase())
  const unknown = names.filter((m) => !isSaslMechanism(m))
  if (unknown.length > 0 || names.length === 0) {
    usage(`--sasl-mechanisms: unknown ${unknown.join(', ')} (use ${SASL_MECHANISMS.join(', ')})`)
  }
  return { mechanisms: [...new Set(names)] as SaslMechanism[], users }
}

const tls = tlsOptions()
const sasl = saslOptions()

const broker = new Broker({
  port: int('port', values.port, 9092),
  ...(values['advertised-port'] !== undefined
    ? { advertisedPort: int('advertised-port', values['advertised-port'], 0) }
    : {}),
  dataDir,
  defaultPartitions: int('partitions', values.partitions, 1),
  autoCreateTopics: !values['no-auto-create'],
  retentionMs: int('retention-ms', values['retention-ms'], 7 * 24 * 3600 * 1000),
  retentionBytes: int('retention-bytes', values['retention-bytes'], -1),
  segmentBytes: int('segment-bytes', values['segment-bytes'], 64 * 1024 * 1024),
  retentionCheckMs: int('retention-check-ms', values['retention-check-ms'], 5000),
  maxMessageBytes: int('max-message-bytes', values['max-message-bytes'], 16 * 1024 * 1024),
  fsync: values.fsync,
  log,
  groups: () => new GroupCoordinator({ initialRebalanceDelayMs, dataDir: dataDir ?? undefined, log }),
  ...(tls !== undefined ? { tls } : {}),
  ...(sasl !== undefined ? { sasl } : {}),
})

// Installed before the listening line is printed, so a supervisor that signals right after it is honoured.
let stopping = false
const stop = (signal: string): void => {
  if (stopping) return
  stopping = true
  log('info', 'stopping', { signal })
  broker.close().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`local-kafka: error while stopping: ${String(err)}`)
      process.exit(1)
    },
  )
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
if (values['exit-with-parent']) {
  // startLocalKafka keeps our stdin open; EOF means its process is gone, so no orphan broker stays behind.
  process.stdin.on('end', () => stop('parent exited'))
  process.stdin.on('error', () => stop('parent exited'))
  process.stdin.resume()
}

let port: number
try {
  port = await broker.start()
} catch (err) {
  console.error(`local-kafka: cannot start: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
}
console.log(`local-kafka listening on 127.0.0.1:${port}`)
log('info', 'broker started', {
  port,
  dataDir,
  fsync: values.fsync,
  securityProtocol: securityProtocol({ tls, sasl }),
  saslMechanisms: sasl?.mechanisms,
})
