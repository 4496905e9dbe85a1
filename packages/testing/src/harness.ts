import { detectContainerRuntime, type Env } from './container-runtime.ts'
import { startKafkaContainer, startRedisContainer, startS3Container } from './containers.ts'
import { loadLocalKafka, startLocalKafkaTracked, type StartLocalKafka } from './local-kafka.ts'
import { startRedis } from './redis-process.ts'
import { startS3 } from './s3-process.ts'

export type Source = 'env' | 'testcontainers' | 'local'
export type HarnessMode = Source | 'mixed'
export type Component = 'kafka' | 'redis' | 's3'

export interface Harness {
  kafkaBrokers: string
  redisUrl: string
  s3Endpoint: string
  /** Where each endpoint came from. */
  sources: Record<Component, Source>
  /** One word when every endpoint came from the same place, else 'mixed'. */
  mode: HarnessMode
  /** PIDs of the local processes started (empty in the environment and container modes). */
  pids: number[]
  /** Set when Kafka could not be provided (kafkaBrokers is then ''). */
  kafkaUnavailable?: string
  /** Stops everything this harness started, in reverse order. */
  stop(): Promise<void>
}

export interface HarnessOptions {
  env?: Env
  /** Decides once whether containers can be used; detectContainerRuntime by default. */
  containerRuntime?: (env: Env) => Promise<boolean>
  /** Defaults to the real @lookstream/local-kafka; tests may substitute. */
  localKafka?: () => Promise<{ start: StartLocalKafka } | { unavailable: string }>
  log?: (line: string) => void
}

const ENV_KEYS: Record<Component, string> = { kafka: 'KAFKA_BROKERS', redis: 'REDIS_URL', s3: 'S3_ENDPOINT' }

interface Started {
  endpoint: string
  pid?: number
  stop(): Promise<void>
}

/**
 * Resolves the Kafka, Redis and S3 endpoints for tests, each independently, in this order:
 * the environment (KAFKA_BROKERS, REDIS_URL, S3_ENDPOINT), containers when a runtime answers
 * (LOOKSTREAM_HARNESS=local skips them), else local processes on free loopback ports.
 */
export async function resolveHarness(options: HarnessOptions = {}): Promise<Harness> {
  const env = options.env ?? process.env
  const log = options.log ?? (() => undefined)
  const missing = (['kafka', 'redis', 's3'] as const).filter((c) => !env[ENV_KEYS[c]])
  const useContainers =
    missing.length > 0 &&
    env.LOOKSTREAM_HARNESS !== 'local' &&
    (await (options.containerRuntime ?? detectContainerRuntime)(env))
  const startSource: Source = useContainers ? 'testcontainers' : 'local'

  let kafkaUnavailable: string | undefined
  const starters: Record<Component, () => Promise<Started | undefined>> = {
    kafka: async () => {
      if (useContainers) return startKafkaContainer()
      const loaded = await (options.localKafka ?? loadLocalKafka)()
      if ('unavailable' in loaded) {
        kafkaUnavailable = loaded.unavailable
        log(`harness: no Kafka for tests: ${loaded.unavailable}`)
        return undefined
      }
      try {
        const kafka = await startLocalKafkaTracked(loaded.start, {
          port: 0,
          inMemory: true,
          initialRebalanceDelayMs: 0,
          logLevel: 'warn',
        })
        return { endpoint: kafka.brokers, pid: kafka.pid, stop: () => kafka.stop() }
      } catch (err) {
        // A broken broker must not take every other package's tests down with it: tests that need
        // Kafka see kafkaBrokers '' and the reason in kafkaUnavailable.
        kafkaUnavailable = `local-kafka did not start: ${(err as Error).message}`
        log(`harness: no Kafka for tests: ${kafkaUnavailable}`)
        return undefined
      }
    },
    redis: async () => {
      if (useContainers) return startRedisContainer()
      const redis = await startRedis()
      return { endpoint: redis.url, pid: redis.pid, stop: () => redis.stop() }
    },
    s3: async () => {
      if (useContainers) return startS3Container()
      const s3 = await startS3()
      return { endpoint: s3.endpoint, pid: s3.pid, stop: () => s3.stop() }
    },
  }

  const results = await Promise.allSettled(missing.map((c) => starters[c]()))
  const started = new Map<Component, Started>()
  results.forEach((r, i) => {
    if (r.status === 'fulfilled' && r.value) started.set(missing[i] as Component, r.value)
  })
  const stopAll = async (): Promise<void> => {
    const all = [...started.values()].reverse()
    started.clear()
    await Promise.allSettled(all.map((s) => s.stop()))
  }
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${missing[i]}: ${String(r.reason)}`] : []))
  if (failures.length > 0) {
    await stopAll()
    throw new Error(`the test harness could not start ${failures.join('; ')}`)
  }

  const endpoint = (c: Component): string => env[ENV_KEYS[c]] || (started.get(c)?.endpoint ?? '')
  const sources = {
    kafka: env.KAFKA_BROKERS ? 'env' : startSource,
    redis: env.REDIS_URL ? 'env' : startSource,
    s3: env.S3_ENDPOINT ? 'env' : startSource,
  } satisfies Record<Component, Source>
  const distinct = new Set(Object.values(sources))
  const harness: Harness = {
    kafkaBrokers: endpoint('kafka'),
    redisUrl: endpoint('redis'),
    s3Endpoint: endpoint('s3'),
    sources,
    mode: distinct.size === 1 ? (distinct.values().next().value as Source) : 'mixed',
    pids: [...started.values()].flatMap((s) => (s.pid === undefined ? [] : [s.pid])),
    stop: stopAll,
  }
  if (kafkaUnavailable !== undefined) harness.kafkaUnavailable = kafkaUnavailable
  for (const c of ['kafka', 'redis', 's3'] as const) log(`harness: ${c} ${endpoint(c) || '(none)'} (${sources[c]})`)
  return harness
}
