// `npm start`: the whole pipeline on this machine. Starts every component in the table below in
// order, prints one line per component with its address and then a ready line, and on Ctrl-C or
// SIGTERM stops them in reverse order by PID and exits 0. If a component dies, it stops the rest and
// exits 1 with the reason.
//
// Environment:
//   KAFKA_BROKERS, REDIS_URL   use that external Kafka / Redis instead of starting one
//   LOCAL_KAFKA_PORT           port of the local-kafka started here (default 9092)
//   LOCAL_KAFKA_DATA_DIR       its data directory (default .data/kafka)
//   LOCAL_REDIS_PORT           port of the redis-server started here (default 6379; data in memory)
//   LOOKSTREAM_START_PORTS=ephemeral
//                              every component started here takes a free port instead of its default
//                              (tests, or a second copy beside a running one)
//   each service line below names its own port variable (e.g. INGRESS_PORT)
// Imported by path, like the other scripts: they are linted as loose files, outside any tsconfig
// project, where a bare workspace import would resolve to (possibly unbuilt) dist/ types.
import { startLocalKafka } from '../packages/local-kafka/src/index.ts'
import { freePort, spawnService, startLocalKafkaTracked, startRedis } from '../packages/testing/src/index.ts'
import { existsSync, mkdirSync } from 'node:fs'
import { isAbsolute, join, relative } from 'node:path'

type Env = Readonly<Record<string, string | undefined>>

interface Context {
  root: string
  env: Env
  ephemeral: boolean
  /** Addresses of the components started so far, by component name. */
  addresses: Record<string, string>
}

interface Running {
  address: string
  detail: string
  /** Resolves with a reason when the component stops by itself (never, for external ones). */
  exited: Promise<string>
  stop(): Promise<void>
}

interface Component {
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
    // redis-server cannot pick a port itself (--port 0 disables TCP).
    const redis = await startRedis({ port: wanted === 0 ? await freePort() : wanted })
    return {
      address: redis.url,
      detail: `redis-server, pid ${redis.pid}, data in memory`,
      exited: redis.process.exited.then(
        (e) =>
          `redis-server ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`}${tail(redis.process.lines())}`,
      ),
      stop: () => redis.stop(),
    }
  },
}

interface ServiceLine {
  name: string
  /** The service's TypeScript entry point, relative to the repository root. */
  entry: string
  /** The variable that overrides its port, and the default port. */
  port: [variable: string, fallback: number]
  /** Its environment, from the addresses of the components before it. */
  env(ctx: Context): Record<string, string>
  /** Polled until 200 once the service logs its address (default /readyz). */
  readyPath?: string
}

/** A Fastify service built with createService, run from its TypeScript source. */
export function service(line: ServiceLine): Component {
  return {
    name: line.name,
    skip: (ctx) => (existsSync(join(ctx.root, line.entry)) ? undefined : `${line.entry} does not exist yet`),
    async start(ctx) {
      const spawned = await spawnService(
        join(ctx.root, line.entry),
        {
          HOST: '127.0.0.1',
          PORT: String(port(ctx, line.port[0], line.port[1])),
          ...line.env(ctx),
        },
        { readyPath: line.readyPath ?? '/readyz', inheritEnv: true, cwd: ctx.root, readyTimeoutMs: 60_000 },
      )
      return {
        address: spawned.url,
        detail: `pid ${spawned.pid}`,
        exited: spawned.process.exited.then(
          (e) =>
            `${line.name} ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`}${tail(spawned.process.lines())}`,
        ),
        stop: async () => void (await spawned.stop('SIGTERM', 15_000)),
      }
    },
  }
}

// The components, in start order (stopped in reverse). A later service adds one line, e.g.
//   service({ name: 'ingress', entry: 'services/ingress/src/main.ts', port: ['INGRESS_PORT', 8080],
//             env: (ctx) => ({ KAFKA_BROKERS: ctx.addresses.kafka!, REDIS_URL: ctx.addresses.redis! }) }),
const components: Component[] = [localKafka, localRedis]

async function main(): Promise<void> {
  const ctx: Context = {
    root: join(import.meta.dirname, '..'),
    env: process.env,
    ephemeral: process.env.LOOKSTREAM_START_PORTS === 'ephemeral',
    addresses: {},
  }
  const running: { name: string; component: Running }[] = []
  let stopping = false
  const width = Math.max(...components.map((c) => c.name.length))

  const stopAll = async (): Promise<void> => {
    for (const { name, component } of running.slice().reverse()) {
      try {
        await component.stop()
      } catch (err) {
        console.error(`${name}: ${(err as Error).message}`)
      }
    }
  }

  const shutdown = (code: number, why: string): void => {
    if (stopping) return
    stopping = true
    console.log(why)
    void stopAll().then(() => {
      console.log('lookstream stopped')
      process.exit(code)
    })
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) {
        // A second Ctrl-C: do not wait for graceful stops. The exit handler kills what is left.
        console.error(`second ${signal}: killing everything`)
        process.exit(1)
      }
      shutdown(0, `${signal}: stopping ${running.length} component${running.length === 1 ? '' : 's'}`)
    })
  }

  // A wrapper that dies without passing its signal on (a shell between npm and this script) would
  // leave everything running as orphans: stop when the parent goes away. The timer is not unref'd on
  // purpose: with only external components nothing else keeps this process alive until a signal.
  const parent = process.ppid
  setInterval(() => {
    if (process.ppid !== parent) shutdown(0, 'parent process exited: stopping')
  }, 1_000)

  for (const component of components) {
    if (stopping) return
    const skipped = component.skip?.(ctx)
    if (skipped !== undefined) {
      console.log(`${component.name.padEnd(width)}  skipped: ${skipped}`)
      continue
    }
    let started: Running
    try {
      started = await component.start(ctx)
    } catch (err) {
      shutdown(1, `${component.name} did not start: ${(err as Error).message}`)
      return
    }
    running.push({ name: component.name, component: started })
    ctx.addresses[component.name] = started.address
    console.log(`${component.name.padEnd(width)}  ${started.address}  (${started.detail})`)
    void started.exited.then((reason) => shutdown(1, `${component.name} stopped unexpectedly: ${reason}`))
  }
  if (!stopping) console.log(`lookstream ready: ${running.length} components running; Ctrl-C stops them`)
}

await main()
