import { CreateBucketCommand, ListBucketsCommand } from '@aws-sdk/client-s3'
import { Redis } from 'ioredis'
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  detectContainerRuntime,
  isAlive,
  loadLocalKafka,
  resolveHarness,
  s3Client,
  startLocalKafkaTracked,
  startRedis,
  startS3,
  waitFor,
  type Harness,
} from '../src/index.ts'

const run = promisify(execFile)
const containerRuntime = await detectContainerRuntime()

async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    return (await client.ping()) === 'PONG'
  } finally {
    client.disconnect()
  }
}

async function s3Answers(endpoint: string): Promise<boolean> {
  const client = s3Client(endpoint)
  try {
    await client.send(new CreateBucketCommand({ Bucket: `probe-${Date.now()}` }))
    return ((await client.send(new ListBucketsCommand({}))).Buckets?.length ?? 0) > 0
  } finally {
    client.destroy()
  }
}

// An independent Kafka client (librdkafka's kcat) reads the broker's metadata.
async function kafkaBrokerIds(brokers: string): Promise<number[]> {
  const { stdout } = await run('kcat', ['-b', brokers, '-L', '-J', '-m', '10'])
  return (JSON.parse(stdout) as { brokers: { id: number }[] }).brokers.map((b) => b.id)
}

// Direct children of this process, from /proc: proves a harness started nothing.
function childPids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid
      } catch {
        return false
      }
    })
    .map(Number)
}

function stopAfter(harness: Harness): void {
  onTestFinished(() => harness.stop())
}

describe('harness: local-process mode', () => {
  it('starts local-kafka, redis-server and s3rver on loopback, all answering, and stops them by PID', async () => {
    const harness = await resolveHarness({ env: {}, containerRuntime: () => Promise.resolve(false) })
    stopAfter(harness)
    expect(harness.mode).toBe('local')
    expect(harness.sources).toEqual({ kafka: 'local', redis: 'local', s3: 'local' })
    expect(harness.kafkaUnavailable).toBeUndefined()
    expect(harness.kafkaBrokers).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(harness.redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/)
    expect(harness.s3Endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(harness.pids).toHaveLength(3)

    expect(await redisAnswers(harness.redisUrl)).toBe(true)
    expect(await s3Answers(harness.s3Endpoint)).toBe(true)
    expect((await kafkaBrokerIds(harness.kafkaBrokers)).length).toBe(1)

    await harness.stop()
    await waitFor(() => harness.pids.every((pid) => !isAlive(pid)), { timeoutMs: 10_000, message: 'harness PIDs gone' })
  })

  it('takes each endpoint from the environment independently and starts only the missing ones', async () => {
    const redis = await startRedis()
    onTestFinished(() => redis.stop())
    const harness = await resolveHarness({
      env: { REDIS_URL: redis.url },
      containerRuntime: () => Promise.resolve(false),
    })
    stopAfter(harness)
    expect(harness.mode).toBe('mixed')
    expect(harness.sources).toEqual({ kafka: 'local', redis: 'env', s3: 'local' })
    expect(harness.redisUrl).toBe(redis.url)
    expect(harness.pids).toHaveLength(2)
    expect(harness.pids).not.toContain(redis.pid)
  })

  it('reports a missing broker without failing the other endpoints', async () => {
    const s3 = await startS3()
    onTestFinished(() => s3.stop())
    const redis = await startRedis()
    onTestFinished(() => redis.stop())
    const harness = await resolveHarness({
      env: { REDIS_URL: redis.url, S3_ENDPOINT: s3.endpoint },
      containerRuntime: () => Promise.resolve(false),
      localKafka: () => Promise.resolve({ unavailable: 'no broker in this test' }),
    })
    stopAfter(harness)
    expect(harness.kafkaBrokers).toBe('')
    expect(harness.kafkaUnavailable).toBe('no broker in this test')
    expect(harness.redisUrl).toBe(redis.url)
  })

  it('LOOKSTREAM_HARNESS=local does not ask for a container runtime', async () => {
    const redis = await startRedis()
    onTestFinished(() => redis.stop())
    const s3 = await startS3()
    onTestFinished(() => s3.stop())
    const harness = await resolveHarness({
      env: { LOOKSTREAM_HARNESS: 'local', REDIS_URL: redis.url, S3_ENDPOINT: s3.endpoint },
      containerRuntime: () => Promise.reject(new Error('the container runtime must not be consulted')),
    })
    stopAfter(harness)
    expect(harness.sources.kafka).toBe('local')
  })
})

describe('harness: environment mode', () => {
  it('uses KAFKA_BROKERS, REDIS_URL and S3_ENDPOINT pointing at processes this test started, and starts nothing', async () => {
    const redis = await startRedis()
    onTestFinished(() => redis.stop())
    const s3 = await startS3()
    onTestFinished(() => s3.stop())
    const loaded = await loadLocalKafka()
    if ('unavailable' in loaded) throw new Error(loaded.unavailable)
    const kafka = await startLocalKafkaTracked(loaded.start, { port: 0, inMemory: true, logLevel: 'warn' })
    onTestFinished(() => kafka.stop())

    const childrenBefore = childPids().sort()
    const harness = await resolveHarness({
      env: { KAFKA_BROKERS: kafka.brokers, REDIS_URL: redis.url, S3_ENDPOINT: s3.endpoint },
      containerRuntime: () => Promise.reject(new Error('the container runtime must not be consulted')),
      localKafka: () => Promise.reject(new Error('local-kafka must not be started')),
    })
    stopAfter(harness)
    expect(childPids().sort()).toEqual(childrenBefore)
    expect(harness).toMatchObject({
      mode: 'env',
      sources: { kafka: 'env', redis: 'env', s3: 'env' },
      kafkaBrokers: kafka.brokers,
      redisUrl: redis.url,
      s3Endpoint: s3.endpoint,
      pids: [],
    })
    expect(await redisAnswers(harness.redisUrl)).toBe(true)
    expect(await s3Answers(harness.s3Endpoint)).toBe(true)
    expect(await kafkaBrokerIds(harness.kafkaBrokers)).toHaveLength(1)

    await harness.stop()
    expect(isAlive(redis.pid) && isAlive(s3.pid) && isAlive(kafka.pid)).toBe(true)
  })
})

describe('harness: testcontainers mode', () => {
  it.skipIf(!containerRuntime)(
    'starts apache/kafka, redis and MinIO containers when a container runtime answers (skipped: no container runtime here)',
    async () => {
      const harness = await resolveHarness({ env: {} })
      stopAfter(harness)
      expect(harness.mode).toBe('testcontainers')
      expect(harness.pids).toEqual([])
      expect(await redisAnswers(harness.redisUrl)).toBe(true)
      expect(await s3Answers(harness.s3Endpoint)).toBe(true)
      expect(await kafkaBrokerIds(harness.kafkaBrokers)).toHaveLength(1)
    },
    240_000,
  )

  it.skipIf(Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock'))(
    'decides quickly that there is no container runtime without DOCKER_HOST or a docker socket',
    async () => {
      const started = performance.now()
      expect(await detectContainerRuntime({})).toBe(false)
      expect(performance.now() - started).toBeLessThan(1_000)
    },
  )
})
