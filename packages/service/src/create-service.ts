import { type LogLevel } from '@lookstream/config'
import { type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from 'fastify'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Logger } from 'pino'
import { type Registry } from 'prom-client'
import { createLogger } from './logger.ts'
import { createHttpMetrics, createRegistry } from './metrics.ts'
import { runReadiness, type ReadinessCheck } from './readiness.ts'

export type ServiceApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>

/** The part of a service's config createService reads (HttpEnv and LogEnv provide it). */
export interface ServiceConfig {
  HOST: string
  PORT: number
  LOG_LEVEL?: LogLevel
  SHUTDOWN_TIMEOUT_MS?: number
}

export interface HttpLimits {
  /** Socket inactivity timeout (ms). */
  connectionTimeout: number
  /** Time allowed to receive a whole request (ms). */
  requestTimeout: number
  /** How long an idle keep-alive connection stays open (ms); above common load balancers' 60 s. */
  keepAliveTimeout: number
  /** Largest accepted request body (bytes). */
  bodyLimit: number
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  connectionTimeout: 60_000,
  requestTimeout: 120_000,
  keepAliveTimeout: 72_000,
  bodyLimit: 1024 * 1024,
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000

export interface ServiceOptions {
  /** Service name: pino `name`, the metrics' `service` label. */
  name: string
  config: ServiceConfig
  /** A logger made with createLogger (others are used as given, without redaction). */
  logger?: Logger
  /** Initial dependency checks for /readyz; more can be added with addReadinessCheck. */
  readiness?: Record<string, ReadinessCheck>
  /** Per-check bound for /readyz (ms). */
  readinessTimeoutMs?: number
  http?: Partial<HttpLimits>
}

export interface ListenAddress {
  host: string
  port: number
  url: string
}

export interface Service {
  app: ServiceApp
  registry: Registry
  log: Logger
  ready: Map<string, ReadinessCheck>
  addReadinessCheck(name: string, check: ReadinessCheck): void
  listen(): Promise<ListenAddress>
  close(): Promise<void>
  /**
   * SIGTERM/SIGINT (and an uncaught error) close the app: stop accepting, let in-flight requests
   * finish, run onClose hooks, exit 0; exit 1 on a second signal, an error, or after
   * SHUTDOWN_TIMEOUT_MS. Returns a function that removes the handlers.
   */
  installSignalHandlers(): () => void
}

export function createService(options: ServiceOptions): Service {
  const { name, config } = options
  const log = options.logger ?? createLogger({ name, level: config.LOG_LEVEL ?? 'info' })
  const limits = { ...DEFAULT_HTTP_LIMITS, ...options.http }
  const shutdownTimeoutMs = config.SHUTDOWN_TIMEOUT_MS ?? DEFAULT_SHUTDOWN_TIMEOUT_MS
  const readinessTimeoutMs = options.readinessTimeoutMs ?? 2_000

  // Typed as Fastify's base logger so the app's type does not depend on pino's exact version.
  const loggerInstance: FastifyBaseLogger = log
  const app: ServiceApp = Fastify({
    loggerInstance,
    ...limits,
    // While closing, new requests on kept-alive connections get 503 and idle connections are
    // closed, so only in-flight requests hold the shutdown.
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Fastify's default Ajv validator stays: unlike TypeBoxValidatorCompiler it applies schema
    // defaults and coerces querystring types, as Fastify's documentation describes.
  }).withTypeProvider<TypeBoxTypeProvider>()

  const registry = createRegistry(name)
  const httpDuration = createHttpMetrics(registry)
  app.addHook('onResponse', async (request, reply) => {
    httpDuration
      .labels(request.method, request.routeOptions.url ?? 'unmatched', String(reply.statusCode))
      .observe(reply.elapsedTime / 1000)
  })

  const ready = new Map<string, ReadinessCheck>(Object.entries(options.readiness ?? {}))

  // Probes are polled every few seconds: keep them out of the info-level request log.
  app.get('/healthz', { logLevel: 'warn' }, (_request, reply) => reply.send({ status: 'ok' }))
  app.get('/readyz', { logLevel: 'warn' }, async (_request, reply) => {
    const report = await runReadiness(ready, readinessTimeoutMs)
    return reply.code(report.status === 'ok' ? 200 : 503).send(report)
  })
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    const body = await registry.metrics()
    return reply.type(registry.contentType).send(body)
  })

  return {
    app,
    registry,
    log,
    ready,
    addReadinessCheck(checkName, check) {
      ready.set(checkName, check)
    },
    async listen() {
      await app.listen({ host: config.HOST, port: config.PORT })
      const { port } = app.server.address() as AddressInfo
      return { host: config.HOST, port, url: `http://${config.HOST}:${port}` }
    },
    async close() {
      await app.close()
    },
    installSignalHandlers() {
      const handlers = closeWithGrace(
        {
          delay: shutdownTimeoutMs,
          logger: { error: (message: unknown) => log.error(String(message)) },
          onSecondSignal: (signal) => log.error({ signal }, 'second signal while shutting down: exiting 1'),
          onTimeout: (delay) => log.error({ delayMs: delay }, 'shutdown did not finish in time: exiting 1'),
        },
        async ({ signal, err }) => {
          if (err) log.error({ err }, 'shutting down after an uncaught error')
          else log.info({ signal }, 'shutting down')
          await app.close()
          log.info('shut down')
        },
      )
      if (process.env.LOOKSTREAM_EXIT_WITH_PARENT === '1') exitWithParent()
      return handlers.uninstall
    },
  }
}

/**
 * For services spawned by `npm start` or a test: the spawner keeps our stdin open, so end-of-file means it
 * died without stopping us. Shut down the same graceful way as on SIGTERM instead of living on as an orphan.
 */
export function exitWithParent(): void {
  const stop = (): void => void process.kill(process.pid, 'SIGTERM')
  process.stdin.once('end', stop)
  process.stdin.once('error', stop)
  process.stdin.resume()
}
