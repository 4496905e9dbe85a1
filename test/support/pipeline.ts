import { createHmac, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startSegmentSimulator, type SegmentSimulatorOptions, type Simulator } from '@lookstream/simulators'
import {
  createTestCertificates,
  loadLocalKafka,
  readTopicWithKcat,
  spawnService,
  startLocalKafkaTracked,
  startRedis,
  waitFor,
  type LocalKafka,
  type RedisProcess,
  type SpawnedService,
  type TopicRecord,
} from '@lookstream/testing'
import { request } from 'undici'
import { startLookerStub, type LookerStub, type StreamedLook } from './looker-stub.ts'

// The whole pipeline as real processes: local-kafka (its own broker per test file), redis-server (its own, so
// a test may stop it), the ingress and the segment service spawned from their entry points, plus the Segment
// simulator and a Looker stub in the test process. The services consume the fixed canonical topics in the
// fixed group `lookstream.segment`, so test files cannot share a broker; within a file, tests run one after
// another and tell their rows apart by a userId prefix.

const INGRESS_MAIN = fileURLToPath(new URL('../../services/ingress/src/main.ts', import.meta.url))
const SEGMENT_MAIN = fileURLToPath(new URL('../../services/segment/src/main.ts', import.meta.url))

export const WRITE_KEY = 'pipeline-test-write-key'
export const LOOKER_USER_AGENT = 'LookerOutgoingWebhook/24.0.0'

export interface PipelineOptions {
  simulator?: SegmentSimulatorOptions
  ingressEnv?: Record<string, string>
  logLevel?: string
  /**
   * Production-like transports: local-kafka with SASL_SSL (SCRAM-SHA-512) and redis-server with TLS and an ACL
   * user; the services get the matching settings, with the passwords in mounted files.
   */
  secure?: boolean
}

/** Users of the secured pipeline (securityEnv holds the settings that use them). */
export const SECURE_KAFKA_USER = 'lookstream-services'
export const SECURE_REDIS_USER = 'lookstream-redis'

export interface ExecuteOptions {
  look: StreamedLook | string
  /** streamed: download_url on the Looker stub; pushed: the result inline as an attachment. */
  mode: 'streamed' | 'pushed'
  scheduledPlanId: number
  action?: string
  base64?: boolean
  formParams?: Record<string, string>
}

export interface LookerResponse {
  success: boolean
  message: string
  send_id?: string
  rows?: { received: number; accepted: number; rejected: number }
  rejected_rows?: { row: number; reason: string }[]
}

export interface ExecuteResult {
  status: number
  looker: LookerResponse
  elapsedMs: number
  /** When the response ended (performance.timeOrigin-based ms, like the simulator's times). */
  answeredAt: number
  /** Newlines before the JSON body: the ingress's keep-alive while the send ran. */
  keepAliveNewlines: number
  /** The path of the download_url handed to the ingress (streamed sends). */
  downloadPath?: string
}

export interface Pipeline {
  kafka: LocalKafka
  redis: RedisProcess
  simulator: Simulator
  looker: LookerStub
  ingress: SpawnedService
  segments: SpawnedService[]
  token: string
  /** Stops redis-server, runs `whileDown`, then starts it again on the same port (empty: it keeps no data). */
  withRedisDown(whileDown: () => Promise<void>): Promise<void>
  /** Environment for a segment service process against this pipeline. */
  segmentEnv(extra?: Record<string, string>): Record<string, string>
  startSegment(extra?: Record<string, string>): Promise<SpawnedService>
  /** SIGTERM every segment service (graceful: in-flight batches finish and commit). */
  stopSegments(): Promise<void>
  execute(options: ExecuteOptions): Promise<ExecuteResult>
  getSend(sendId: string): Promise<Record<string, unknown>>
  /** The Kafka and Redis settings the services get (plain defaults unless the pipeline is secure). */
  securityEnv: Record<string, string>
  /** Every record on a topic so far, read with kcat (librdkafka: a client independent of the services'). */
  readTopic(topic: string): Promise<TopicRecord[]>
  stop(): Promise<void>
}

/** A token made with the reference hub's algorithm: `<nonce>/<hex HMAC-SHA512(secret, nonce)>`. */
export function actionHubToken(secret: string): string {
  const nonce = randomBytes(16).toString('hex')
  return `${nonce}/${createHmac('sha512', secret).update(nonce).digest('hex')}`
}

export async function startPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  const logLevel = options.logLevel ?? 'info'
  const stops: (() => Promise<unknown>)[] = []
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined)
  }
  try {
    const loaded = await loadLocalKafka()
    if ('unavailable' in loaded) throw new Error(loaded.unavailable)
    const certs = options.secure ? createTestCertificates() : undefined
    if (certs) stops.push(() => Promise.resolve(certs.remove()))
    const kafkaPassword = randomBytes(18).toString('base64url')
    const redisPassword = randomBytes(18).toString('base64url')
    const kafka = await startLocalKafkaTracked(loaded.start, {
      inMemory: true,
      initialRebalanceDelayMs: 0,
      ...(certs
        ? {
            tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile },
            sasl: { users: { [SECURE_KAFKA_USER]: kafkaPassword } },
          }
        : {}),
    })
    stops.push(() => kafka.stop())
    const redisOptions = certs
      ? {
          tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile },
          users: { [SECURE_REDIS_USER]: redisPassword },
        }
      : {}
    const redis = await startRedis(redisOptions)
    let securityEnv: Record<string, string> = {}
    if (certs) {
      const kafkaPasswordFile = join(certs.dir, 'kafka-password')
      const redisPasswordFile = join(certs.dir, 'redis-password')
      writeFileSync(kafkaPasswordFile, `${kafkaPassword}\n`, { mode: 0o600 })
      writeFileSync(redisPasswordFile, `${redisPassword}\n`, { mode: 0o600 })
      securityEnv = {
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SSL_CA_FILE: certs.caFile,
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: SECURE_KAFKA_USER,
        KAFKA_SASL_PASSWORD_FILE: kafkaPasswordFile,
        REDIS_TLS_CA_FILE: certs.caFile,
        REDIS_USERNAME: SECURE_REDIS_USER,
        REDIS_PASSWORD_FILE: redisPasswordFile,
      }
    }
    let liveRedis = redis
    stops.push(() => liveRedis.stop())
    const simulator = await startSegmentSimulator({
      writeKeys: [WRITE_KEY],
      rateLimit: null,
      maxItems: 200_000,
      maxRequests: 100_000,
      ...options.simulator,
    })
    stops.push(() => simulator.close())
    const looker = await startLookerStub()
    stops.push(() => looker.close())

    const secret = randomBytes(32).toString('hex')
    const ingress = await spawnService(
      INGRESS_MAIN,
      {
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: logLevel,
        ACTION_HUB_SECRET: secret,
        KAFKA_BROKERS: kafka.brokers,
        REDIS_URL: redis.url,
        ...securityEnv,
        LOOKER_HOSTS: looker.origin,
        ...options.ingressEnv,
      },
      { readyTimeoutMs: 60_000 },
    )
    stops.push(() => ingress.stop('SIGTERM', 10_000))
    const token = actionHubToken(secret)
    const auth = { authorization: `Token token="${token}"` }
    const segments: SpawnedService[] = []

    const segmentEnv = (extra: Record<string, string> = {}) => ({
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: logLevel,
      KAFKA_BROKERS: kafka.brokers,
      REDIS_URL: redis.url,
      ...securityEnv,
      SEGMENT_WRITE_KEY: WRITE_KEY,
      SEGMENT_API_URL: simulator.url,
      SEGMENT_RATE_LIMIT_RPS: '500',
      DELIVERY_BACKOFF_BASE_MS: '50',
      DELIVERY_BACKOFF_MAX_MS: '500',
      DELIVERY_REQUEST_TIMEOUT_MS: '2000',
      DELIVERY_RETRY_DELAY_MS: '500',
      DELIVERY_RETRY_MAX_DELAY_MS: '1000',
      DELIVERY_REGISTRY_HEARTBEAT_MS: '500',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '500',
      SHUTDOWN_TIMEOUT_MS: '15000',
      ...extra,
    })

    const pipeline: Pipeline = {
      kafka,
      redis,
      simulator,
      looker,
      ingress,
      segments,
      token,
      segmentEnv,
      securityEnv,
      async withRedisDown(whileDown) {
        const { port } = pipeline.redis
        await pipeline.redis.stop()
        try {
          await whileDown()
        } finally {
          liveRedis = await startRedis({ port, ...redisOptions })
          pipeline.redis = liveRedis
        }
      },
      async startSegment(extra = {}) {
        const service = await spawnService(SEGMENT_MAIN, segmentEnv(extra), { readyTimeoutMs: 60_000 })
        segments.push(service)
        return service
      },
      async stopSegments() {
        await Promise.all(segments.splice(0).map((s) => s.stop('SIGTERM', 20_000)))
      },
      async execute(exec) {
        const plan: Record<string, unknown> = {
          scheduled_plan_id: exec.scheduledPlanId,
          title: 'pipeline test',
          type: 'Look',
          url: 'https://looker.example.com/looks/42',
          query: { model: 'shop', view: 'users', fields: ['users.id'], vis_config: { hidden_fields: [] } },
        }
        let attachment: Record<string, string> | null = null
        let downloadPath: string | undefined
        if (exec.mode === 'streamed') {
          plan.download_url = looker.serve(exec.look)
          downloadPath = new URL(plan.download_url as string).pathname
        } else {
          if (typeof exec.look !== 'string') throw new TypeError('a pushed send needs the whole result as a string')
          attachment = exec.base64
            ? {
                mimetype: 'application/json;base64',
                extension: 'json',
                data: Buffer.from(exec.look).toString('base64'),
              }
            : { mimetype: 'application/json', extension: 'json', data: exec.look }
        }
        const started = performance.now()
        const res = await request(`${ingress.url}/actions/${exec.action ?? 'segment_identify'}/execute`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json', 'user-agent': LOOKER_USER_AGENT },
          body: JSON.stringify({
            type: 'query',
            scheduled_plan: plan,
            attachment,
            data: {},
            form_params: exec.formParams ?? {},
          }),
          headersTimeout: 600_000,
          bodyTimeout: 600_000,
        })
        // Keep-alive newlines may precede the JSON body.
        const raw = await res.body.text()
        const elapsedMs = performance.now() - started
        const answeredAt = performance.timeOrigin + performance.now()
        const keepAliveNewlines = raw.length - raw.trimStart().length
        const body = JSON.parse(raw.trim()) as { looker: LookerResponse }
        return {
          status: res.statusCode,
          looker: body.looker,
          elapsedMs,
          answeredAt,
          keepAliveNewlines,
          ...(downloadPath ? { downloadPath } : {}),
        }
      },
      async getSend(sendId) {
        const res = await request(`${ingress.url}/sends/${encodeURIComponent(sendId)}`, { headers: auth })
        if (res.statusCode !== 200) throw new Error(`GET /sends/${sendId}: HTTP ${res.statusCode}`)
        return (await res.body.json()) as Record<string, unknown>
      },
      readTopic: (topic) => readTopicWithKcat(kafka.brokers, topic),
      async stop() {
        await pipeline.stopSegments()
        await stopAll()
      },
    }
    return pipeline
  } catch (err) {
    await stopAll()
    throw err
  }
}

/** Counts the simulator's accepted events whose userId or email starts with `prefix`, by messageId. */
export function acceptedFor(simulator: Simulator, prefix: string): AcceptedEvent[] {
  const out: AcceptedEvent[] = []
  for (const accepted of simulator.state.accepted.toArray()) {
    const item = accepted.item as SegmentEvent
    const owner = item.userId ?? item.traits?.email
    if (typeof owner === 'string' && owner.startsWith(`${prefix}-`)) {
      out.push({ messageId: accepted.id ?? '', acceptedAt: accepted.acceptedAt, item })
    }
  }
  return out
}

export interface SegmentEvent {
  type?: string
  messageId?: string
  userId?: string
  anonymousId?: string
  traits?: Record<string, unknown>
  timestamp?: string
  [key: string]: unknown
}

export interface AcceptedEvent {
  messageId: string
  acceptedAt: number
  item: SegmentEvent
}

/** Waits until `count` events of `prefix` were accepted (polling, with a deadline). */
export async function waitForAccepted(
  simulator: Simulator,
  prefix: string,
  count: number,
  timeoutMs = 60_000,
): Promise<AcceptedEvent[]> {
  return waitFor(
    () => {
      const accepted = acceptedFor(simulator, prefix)
      return accepted.length >= count ? accepted : false
    },
    { timeoutMs, intervalMs: 100, message: `${count} accepted events for ${prefix}` },
  )
}

/** The sum of a Prometheus counter/gauge over all its label sets, from a service's /metrics. */
export async function metricSum(service: SpawnedService, name: string): Promise<number> {
  const res = await request(`${service.url}/metrics`)
  const text = await res.body.text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}
