// The components `npm start` runs (scripts/start.ts), in start order, each startable on its own: bench/chaos
// starts, kills and restarts them one by one with the same table.
// Imported by path, like the other scripts: they are linted as loose files, outside any tsconfig
// project, where a bare workspace import would resolve to (possibly unbuilt) dist/ types.
import { startLocalKafka } from '../packages/local-kafka/src/index.ts'
import {
  buildProject,
  freePort,
  readStartCommand,
  spawnService,
  HARNESS_S3_CREDENTIALS,
  ensureBucket,
  startLocalKafkaTracked,
  startRedis,
  startS3,
} from '../packages/testing/src/index.ts'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { generateToken } from '../services/ingress/src/looker/token.ts'
import { isAbsolute, join, relative, resolve } from 'node:path'

export type Env = Readonly<Record<string, string | undefined>>

export interface Context {
  root: string
  env: Env
  ephemeral: boolean
  /** Addresses of the components started so far, by component name. */
  addresses: Record<string, string>
  /** Extra environment for a service component, by component name (after its own; bench/chaos tunes retries). */
  serviceEnv?: Record<string, Record<string, string>>
  /** Extra arguments for a service component, by component name (after its own, e.g. a simulator's limits). */
  serviceArgs?: Record<string, string[]>
  /** Projects already compiled in this context: a service restarted by bench/chaos is not compiled again. */
  built?: Set<string>
}

export interface Running {
  address: string
  detail: string
  /** The process's id (none for external components). */
  pid?: number
  /** Resolves with a reason when the component stops by itself (never, for external ones). */
  exited: Promise<string>
  stop(): Promise<void>
}

export interface Component {
  name: string
  /** Why the component is left out (e.g. its entry file does not exist yet), or undefined. */
  skip?(ctx: Context): string | undefined
  start(ctx: Context): Promise<Running>
}

const never = new Promise<string>(() => undefined)

function tail(lines: string[]): string {
  return lines.length > 0 ? `; last output:\n  ${lines.slice(-10).join('\n  ')}` : ''
}

function port(ctx: Context, variable: string, fallback: number): number {
  const value = ctx.env[variable]
  if (value) {
    const n = Number(value)
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${variable} must be a port number, got "${value}"`)
    return n
  }
  return ctx.ephemeral ? 0 : fallback
}

/** An address as printed: a URL's user and password (REDIS_URL may carry them) replaced by `***`. */
export function withoutCredentials(address: string): string {
  return address.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1***@')
}

function external(address: string, variable: string): Running {
  return { address, detail: `external, from ${variable}`, exited: never, stop: () => Promise.resolve() }
}

const localKafka: Component = {
  name: 'kafka',
  async start(ctx) {
    if (ctx.env.KAFKA_BROKERS) return external(ctx.env.KAFKA_BROKERS, 'KAFKA_BROKERS')
    const dataDir = ctx.env.LOCAL_KAFKA_DATA_DIR || join(ctx.root, '.data', 'kafka')
    mkdirSync(dataDir, { recursive: true })
    const stderr: string[] = []
    // Tracked so that the exit handler kills it if this script dies without stopping it.
    const kafka = await startLocalKafkaTracked(startLocalKafka, {
      port: port(ctx, 'LOCAL_KAFKA_PORT', 9092),
      dataDir,
      initialRebalanceDelayMs: 0,
      logLevel: 'warn',
      onStderr: (chunk) => stderr.push(...chunk.trimEnd().split('\n')),
    })
    const shown = isAbsolute(dataDir) && dataDir.startsWith(ctx.root) ? relative(ctx.root, dataDir) : dataDir
    return {
      address: kafka.brokers,
      detail: `local-kafka, pid ${kafka.pid}, data in ${shown}`,
      pid: kafka.pid,
      exited: (kafka.exited ?? never).then((code) => `local-kafka exited with code ${code}${tail(stderr)}`),
      stop: () => kafka.stop(),
    }
  },
}

const localRedis: Component = {
  name: 'redis',
  async start(ctx) {
    if (ctx.env.REDIS_URL) return external(ctx.env.REDIS_URL, 'REDIS_URL')
    const wanted = port(ctx, 'LOCAL_REDIS_PORT', 6379)
    // Persistent like a production Redis: one that came back empty would lose the ingress's send records and the
    // dedupe marks, and make the file runtime rebuild its open sends from S3 staging (ADR 0019). The append-only
    // file is fsynced every second.
    const dataDir = resolve(ctx.root, ctx.env.LOCAL_REDIS_DATA_DIR || join('.data', 'redis'))
    mkdirSync(dataDir, { recursive: true })
    // redis-server cannot pick a port itself (--port 0 disables TCP).
    const redis = await startRedis({
      port: wanted === 0 ? await freePort() : wanted,
      args: ['--dir', dataDir, '--appendonly', 'yes', '--appendfsync', 'everysec'],
    })
    const shown = dataDir.startsWith(ctx.root) ? relative(ctx.root, dataDir) : dataDir
    return {
      address: redis.url,
      detail: `redis-server, pid ${redis.pid}, data in ${shown}`,
      pid: redis.pid,
      exited: redis.process.exited.then(
        (e) =>
          `redis-server ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`}${tail(redis.process.lines())}`,
      ),
      stop: () => redis.stop(),
    }
  },
}

/** The bucket the recurly-engage service writes to on the local S3. */
export const LOCAL_RECURLY_ENGAGE_BUCKET = 'recurly-engage'

const localS3: Component = {
  name: 's3',
  skip: (ctx) =>
    ctx.env.RECURLY_ENGAGE_S3_BUCKET ? 'RECURLY_ENGAGE_S3_BUCKET is set: recurly-engage writes there' : undefined,
  async start(ctx) {
    const directory = ctx.env.LOCAL_S3_DATA_DIR || join(ctx.root, '.data', 's3')
    const shown = directory.startsWith(ctx.root) ? relative(ctx.root, directory) : directory
    mkdirSync(directory, { recursive: true })
    const s3 = await startS3({ directory, port: port(ctx, 'LOCAL_S3_PORT', 4569) })
    await ensureBucket(s3.endpoint, LOCAL_RECURLY_ENGAGE_BUCKET)
    return {
      address: s3.endpoint,
      detail: `s3rver, pid ${s3.pid}, bucket ${LOCAL_RECURLY_ENGAGE_BUCKET}, data in ${shown}`,
      pid: s3.pid,
      exited: s3.process.exited.then(
        (e) =>
          `s3rver ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`}${tail(s3.process.lines())}`,
      ),
      stop: () => s3.stop(),
    }
  },
}

interface ServiceLine {
  name: string
  /** The service's TypeScript entry point, relative to the repository root. */
  entry: string
  /**
   * Run the service as its package's `pnpm start` does instead (this package directory, relative to the
   * root): compiled first with `tsc -b`, then its dist/ entry with the start script's Node flags and
   * environment. For the ingress and the destination services, whose memory bounds depend on both
   * (bench/README.md).
   */
  asStarted?: string
  /** The variable that overrides its port, and the default port. */
  port: [variable: string, fallback: number]
  /** Its environment, from the addresses of the components before it. */
  env(ctx: Context): Record<string, string>
  /** Polled until 200 once the service logs its address (default /readyz); null: the listen line is enough. */
  readyPath?: string | null
  /** A line that means "listening", capturing the base URL (default: Fastify's listen line). */
  listenLine?: RegExp
  /** Node options before the entry point. */
  nodeArgs?: string[]
  /** Arguments after the entry point, given the port chosen for it. */
  args?(port: number): string[]
  /** Left out, with this reason, when the result is not undefined (e.g. an external service is configured). */
  skip?(ctx: Context): string | undefined
}

/** A Fastify service built with createService, run from its TypeScript source. */
export function service(line: ServiceLine): Component {
  return {
    name: line.name,
    skip: (ctx) => (existsSync(join(ctx.root, line.entry)) ? line.skip?.(ctx) : `${line.entry} does not exist yet`),
    async start(ctx) {
      // A concrete port even in ephemeral mode: the services log at warn, so no listen line tells it.
      const chosen = port(ctx, line.port[0], line.port[1]) || (await freePort())
      let started: { entry: string; nodeArgs: string[]; env: Record<string, string> } | undefined
      if (line.asStarted !== undefined) {
        if (!ctx.built?.has(line.asStarted)) buildProject(join(ctx.root, line.asStarted))
        ctx.built?.add(line.asStarted)
        started = readStartCommand(join(ctx.root, line.asStarted))
      }
      const spawned = await spawnService(
        started?.entry ?? join(ctx.root, line.entry),
        { ...started?.env, HOST: '127.0.0.1', PORT: String(chosen), ...line.env(ctx), ...ctx.serviceEnv?.[line.name] },
        {
          readyPath: line.readyPath === undefined ? '/readyz' : line.readyPath,
          ...(line.listenLine ? { listenLine: line.listenLine } : {}),
          compiled: started !== undefined,
          nodeArgs: [...(started?.nodeArgs ?? []), ...(line.nodeArgs ?? [])],
          args: [...(line.args?.(chosen) ?? []), ...(ctx.serviceArgs?.[line.name] ?? [])],
          inheritEnv: true,
          cwd: ctx.root,
          readyTimeoutMs: 60_000,
        },
      )
      return {
        address: spawned.url,
        detail: `pid ${spawned.pid}`,
        pid: spawned.pid,
        exited: spawned.process.exited.then(
          (e) =>
            `${line.name} ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`}${tail(spawned.process.lines())}`,
        ),
        stop: async () => void (await spawned.stop('SIGTERM', 15_000)),
      }
    },
  }
}

/** Local-only credentials shared by the simulators and the services started here. */
const LOCAL_SEGMENT_WRITE_KEY = 'local-segment-write-key'
/** Local-only REST API key shared by the Braze simulator and the braze service started here. */
const LOCAL_BRAZE_API_KEY = 'local-braze-api-key'
/** The Heap simulator's environment, the heap service's default connection here. */
const LOCAL_HEAP_APP_ID = '1234567890'
const LOCAL_MPARTICLE_KEY = 'local-mparticle-key'
const LOCAL_MPARTICLE_SECRET = 'local-mparticle-secret'

/**
 * The Action Hub secret: ACTION_HUB_SECRET, else one generated on first start and kept in
 * .data/action-hub-secret (git-ignored), so a token registered in Looker survives restarts.
 */
function actionHubSecret(ctx: Context): string {
  if (ctx.env.ACTION_HUB_SECRET) return ctx.env.ACTION_HUB_SECRET
  const file = join(ctx.root, '.data', 'action-hub-secret')
  if (!existsSync(file)) {
    mkdirSync(join(ctx.root, '.data'), { recursive: true })
    writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
  }
  return readFileSync(file, 'utf8').trim()
}

/**
 * The send history page's viewer token and the secret sealing its row details: from the environment, else
 * generated once and kept in .data/ (git-ignored) like the Action Hub secret.
 */
function localSecret(ctx: Context, name: 'VIEWER_TOKEN' | 'SEND_HISTORY_SECRET'): string {
  const given = ctx.env[name]
  if (given) return given
  const file = join(ctx.root, '.data', name.toLowerCase().replace(/_/g, '-'))
  if (!existsSync(file)) {
    mkdirSync(join(ctx.root, '.data'), { recursive: true })
    writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
  }
  return readFileSync(file, 'utf8').trim()
}

/** The address of a component started earlier (the table's order guarantees it). */
function address(ctx: Context, name: string): string {
  const value = ctx.addresses[name]
  if (value === undefined) throw new Error(`${name} has no address: it must start before the components that use it`)
  return value
}

const base = (ctx: Context): Record<string, string> => ({
  KAFKA_BROKERS: address(ctx, 'kafka'),
  REDIS_URL: address(ctx, 'redis'),
  LOG_LEVEL: ctx.env.LOG_LEVEL ?? 'warn',
  // Shared by the ingress and the destination services: the failed rows they keep for the send history page.
  SEND_HISTORY_SECRET: localSecret(ctx, 'SEND_HISTORY_SECRET'),
})

// The components, in start order (stopped in reverse). A service joins with one line.
export const components: Component[] = [
  localKafka,
  localRedis,
  service({
    name: 'segment-simulator',
    entry: 'packages/simulators/src/cli.ts',
    port: ['SEGMENT_SIMULATOR_PORT', 4010],
    skip: (ctx) => (ctx.env.SEGMENT_API_URL ? 'SEGMENT_API_URL is set: the segment service calls it' : undefined),
    env: () => ({}),
    args: (p) => ['--segment-port', String(p), '--segment-write-key', LOCAL_SEGMENT_WRITE_KEY],
    listenLine: /^segment simulator listening on (http:\/\/\S+)$/,
    readyPath: null,
  }),
  service({
    name: 'braze-simulator',
    entry: 'packages/simulators/src/cli.ts',
    port: ['BRAZE_SIMULATOR_PORT', 4011],
    skip: (ctx) => (ctx.env.BRAZE_REST_ENDPOINT ? 'BRAZE_REST_ENDPOINT is set: the braze service calls it' : undefined),
    env: () => ({}),
    args: (p) => ['--braze-port', String(p), '--braze-api-key', LOCAL_BRAZE_API_KEY],
    listenLine: /^braze simulator listening on (http:\/\/\S+)$/,
    readyPath: null,
  }),
  service({
    name: 'heap-simulator',
    entry: 'packages/simulators/src/cli.ts',
    port: ['HEAP_SIMULATOR_PORT', 4012],
    skip: (ctx) => (ctx.env.HEAP_API_URL ? 'HEAP_API_URL is set: the heap service calls it' : undefined),
    env: () => ({}),
    args: (p) => ['--heap-port', String(p), '--heap-app-id', LOCAL_HEAP_APP_ID],
    listenLine: /^heap simulator listening on (http:\/\/\S+)$/,
    readyPath: null,
  }),
  service({
    name: 'ingress',
    entry: 'services/ingress/src/main.ts',
    asStarted: 'services/ingress',
    port: ['INGRESS_PORT', 8080],
    env: (ctx) => ({
      ...base(ctx),
      ACTION_HUB_SECRET: actionHubSecret(ctx),
      VIEWER_TOKEN: localSecret(ctx, 'VIEWER_TOKEN'),
      SEND_HISTORY_SECRET: localSecret(ctx, 'SEND_HISTORY_SECRET'),
      // The sample Look (npm run sample) is served from 127.0.0.1:8099.
      LOOKER_HOSTS: ctx.env.LOOKER_HOSTS ?? 'http://127.0.0.1:8099',
    }),
  }),
  service({
    name: 'segment',
    entry: 'services/segment/src/main.ts',
    asStarted: 'services/segment',
    port: ['SEGMENT_PORT', 8081],
    env: (ctx) => ({
      ...base(ctx),
      SEGMENT_WRITE_KEY: ctx.env.SEGMENT_WRITE_KEY ?? LOCAL_SEGMENT_WRITE_KEY,
      SEGMENT_API_URL: ctx.env.SEGMENT_API_URL ?? address(ctx, 'segment-simulator'),
    }),
  }),
  service({
    name: 'braze',
    entry: 'services/braze/src/main.ts',
    asStarted: 'services/braze',
    port: ['BRAZE_PORT', 8082],
    env: (ctx) => {
      // A real endpoint: BRAZE_API_KEY, BRAZE_ALLOWED_HOSTS and the rest are inherited from this environment.
      if (ctx.env.BRAZE_REST_ENDPOINT) return base(ctx)
      const simulator = address(ctx, 'braze-simulator')
      return {
        ...base(ctx),
        BRAZE_API_KEY: LOCAL_BRAZE_API_KEY,
        BRAZE_REST_ENDPOINT: simulator,
        // The simulator is not a Braze instance host: allow exactly it.
        BRAZE_ALLOWED_HOSTS: new URL(simulator).host,
      }
    },
  }),
  service({
    name: 'heap',
    entry: 'services/heap/src/main.ts',
    asStarted: 'services/heap',
    port: ['HEAP_PORT', 8083],
    env: (ctx) => ({
      ...base(ctx),
      HEAP_APP_ID: ctx.env.HEAP_APP_ID ?? LOCAL_HEAP_APP_ID,
      HEAP_API_URL: ctx.env.HEAP_API_URL ?? address(ctx, 'heap-simulator'),
    }),
  }),
  service({
    name: 'mparticle-simulator',
    entry: 'packages/simulators/src/cli.ts',
    port: ['MPARTICLE_SIMULATOR_PORT', 4040],
    skip: (ctx) => (ctx.env.MPARTICLE_API_URL ? 'MPARTICLE_API_URL is set: the mparticle service calls it' : undefined),
    env: () => ({}),
    args: (p) => [
      '--mparticle-port',
      String(p),
      '--mparticle-key',
      LOCAL_MPARTICLE_KEY,
      '--mparticle-secret',
      LOCAL_MPARTICLE_SECRET,
    ],
    listenLine: /^mparticle simulator listening on (http:\/\/\S+)$/,
    readyPath: null,
  }),
  service({
    name: 'mparticle',
    entry: 'services/mparticle/src/main.ts',
    asStarted: 'services/mparticle',
    port: ['MPARTICLE_PORT', 8084],
    env: (ctx) => ({
      ...base(ctx),
      MPARTICLE_API_KEY: ctx.env.MPARTICLE_API_KEY ?? LOCAL_MPARTICLE_KEY,
      MPARTICLE_API_SECRET: ctx.env.MPARTICLE_API_SECRET ?? LOCAL_MPARTICLE_SECRET,
      MPARTICLE_API_URL: ctx.env.MPARTICLE_API_URL ?? `${address(ctx, 'mparticle-simulator')}/v2`,
    }),
  }),
  localS3,
  service({
    name: 'recurly-engage',
    entry: 'services/recurly-engage/src/main.ts',
    asStarted: 'services/recurly-engage',
    port: ['RECURLY_ENGAGE_PORT', 8085],
    env: (ctx) => ({
      ...base(ctx),
      ...(ctx.env.RECURLY_ENGAGE_S3_BUCKET
        ? {}
        : {
            RECURLY_ENGAGE_S3_BUCKET: LOCAL_RECURLY_ENGAGE_BUCKET,
            RECURLY_ENGAGE_S3_PREFIX: 'ingest/',
            RECURLY_ENGAGE_S3_ENDPOINT: address(ctx, 's3'),
            RECURLY_ENGAGE_S3_ACCESS_KEY_ID: HARNESS_S3_CREDENTIALS.accessKeyId,
            RECURLY_ENGAGE_S3_SECRET_ACCESS_KEY: HARNESS_S3_CREDENTIALS.secretAccessKey,
          }),
    }),
  }),
]

/** What a newcomer needs next: where Looker connects, with which token, and how to watch a send. */
export function printNextSteps(ctx: Context): void {
  const ingress = ctx.addresses.ingress
  if (ingress === undefined) return
  console.log('')
  console.log(`Action Hub URL:   ${ingress}`)
  console.log(`Action Hub token: ${generateToken(actionHubSecret(ctx))}`)
  console.log(`Send history:     ${ingress}/history (viewer token: ${localSecret(ctx, 'VIEWER_TOKEN')})`)
  console.log('Send a sample Look and watch its rows arrive in the Segment simulator:')
  console.log('  npm run sample')
  const others = ['braze', 'heap', 'mparticle', 'recurly-engage'].filter((name) => ctx.addresses[name] !== undefined)
  if (others.length === 0) return
  console.log(`or in another destination (${others.join(', ')}), e.g.`)
  console.log(`  npm run sample -- --destination ${others[0]}`)
}
