import { randomUUID } from 'node:crypto'
import { type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { TOPICS, type RejectReason } from '@lookstream/events'
import { createService, type Service } from '@lookstream/service'
import { type FastifyReply, type FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { request as httpRequest } from 'undici'
import { actions, findAction } from './actions/index.ts'
import { type Action } from './actions/action.ts'
import { type IngressConfig } from './config.ts'
import { unavailableReason, type DestinationDirectory } from './destinations/directory.ts'
import { parseExecuteRequest, type ExecuteRequest } from './execute/execute-request.ts'
import { runSend, type MessageProducer, type SendCounts, type SendOutcome } from './execute/run-send.ts'
import { createIngressMetrics } from './ingress-metrics.ts'
import { actionJson, formJson } from './looker/action-json.ts'
import { parseLookerHosts } from './looker/looker-hosts.ts'
import { lookerVersionFrom } from './looker/looker-version.ts'
import { isAuthorized } from './looker/token.ts'
import { type SendStore } from './sends/send-store.ts'

export interface IngressDeps {
  producer: MessageProducer
  sends: SendStore
  /** The running destination services and their connections (the destination registry). */
  destinations: DestinationDirectory
  /** Readiness checks for /readyz (Kafka, Redis). */
  readiness?: Parameters<typeof createService>[0]['readiness']
  logger?: Parameters<typeof createService>[0]['logger']
}

const FORBIDDEN = { success: false, error: "Invalid 'Authorization' header." }
const FINISH_EVENT_TIMEOUT_MS = 10_000
const VERSION = '0.1.0'

// Pushed data goes through the same streaming reader, in slices, like a download would.
// eslint-disable-next-line @typescript-eslint/require-await -- the reader consumes async iterables
async function* bufferSource(data: Buffer): AsyncGenerator<Uint8Array> {
  const slice = 64 * 1024
  for (let offset = 0; offset < data.length; offset += slice) yield data.subarray(offset, offset + slice)
}

function notFound(reply: FastifyReply, name: string) {
  return reply.code(404).send({ success: false, error: `No action found with name ${name}.` })
}

function lookerBody(outcome: { success: boolean; message: string } & Record<string, unknown>): string {
  return JSON.stringify({ looker: outcome })
}

function describeOutcome(action: Action, connection: string, outcome: SendOutcome): string {
  const reasons = outcome.reasons.map((r) => `row ${r.row}: ${r.reason}`).join('; ')
  const rows = `${outcome.accepted} of ${outcome.received} rows accepted (acknowledged by Kafka), ${outcome.rejected} rejected`
  const where = `${action.label} (connection ${connection})`
  const head =
    outcome.failure === undefined
      ? `Sent to ${where}: ${rows}.`
      : `Send to ${where} failed: ${outcome.failure.replace(/\.$/, '')}. ${rows}.`
  const notes = (outcome.notes ?? []).map((note) => ` Note: ${note}`).join('')
  return reasons === ''
    ? `${head}${notes}`
    : `${head} First rejected rows: ${reasons}${outcome.rejected > outcome.reasons.length ? '; …' : ''}.${notes}`
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))),
    ])
  } finally {
    clearTimeout(timer)
  }
}

export function buildApp(config: IngressConfig, deps: IngressDeps): Service {
  const service = createService({
    name: 'ingress',
    config,
    ...(deps.readiness ? { readiness: deps.readiness } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
  })
  const { app, log } = service
  const metrics = createIngressMetrics(service.registry)
  const lookerHosts = parseLookerHosts(config.LOOKER_HOSTS)
  let active = 0

  const baseUrl = (request: FastifyRequest) => config.PUBLIC_URL ?? `${request.protocol}://${request.host}`

  app.get('/status', { logLevel: 'warn' }, () => ({ status: 'ok', app: 'lookstream-ingress', version: VERSION }))

  // Everything Looker calls, plus the send API, needs a valid Action Hub token.
  void app.register((plugin, _options, done) => {
    const hub = plugin.withTypeProvider<TypeBoxTypeProvider>()
    hub.addHook('onRequest', async (request, reply) => {
      if (!isAuthorized(config.ACTION_HUB_SECRET, request.headers.authorization)) {
        log.warn({ url: request.url }, 'rejected a request without a valid Action Hub token')
        return reply.code(403).send(FORBIDDEN)
      }
    })

    hub.post('/', async (request, reply) => {
      const version = lookerVersionFrom(request.headers['user-agent'])
      const view = await deps.destinations.view()
      return reply.send({
        label: config.ACTION_HUB_LABEL,
        integrations: actions.map((a) =>
          actionJson(a, baseUrl(request), version, unavailableReason(view, a.destination, a.label)),
        ),
      })
    })

    const ActionParams = Type.Object({ name: Type.String({ maxLength: 128 }) })

    hub.post('/actions/:name', { schema: { params: ActionParams } }, async (request, reply) => {
      const action = findAction(request.params.name)
      if (!action) return notFound(reply, request.params.name)
      const view = await deps.destinations.view()
      const unavailable = unavailableReason(view, action.destination, action.label)
      return reply.send(
        actionJson(action, baseUrl(request), lookerVersionFrom(request.headers['user-agent']), unavailable),
      )
    })

    hub.post('/actions/:name/form', { schema: { params: ActionParams } }, async (request, reply) => {
      const action = findAction(request.params.name)
      if (!action) return notFound(reply, request.params.name)
      const view = await deps.destinations.view()
      const unavailable = unavailableReason(view, action.destination, action.label)
      // Looker shows a form's `error` in the send dialog instead of the fields.
      if (unavailable !== undefined) return reply.send({ error: `${action.label} is unavailable: ${unavailable}.` })
      return reply.send(formJson(action, view.known ? view.live.get(action.destination)?.connections : undefined))
    })

    hub.post(
      '/actions/:name/execute',
      { schema: { params: ActionParams }, bodyLimit: config.MAX_BODY_BYTES },
      async (request, reply) => {
        const action = findAction(request.params.name)
        if (!action) return notFound(reply, request.params.name)
        const webhook = request.headers['x-looker-webhook-id']
        const parsed = parseExecuteRequest(
          action,
          request.body,
          typeof webhook === 'string' ? webhook : undefined,
          lookerHosts,
        )
        if (!parsed.ok) {
          metrics.sends.inc({ action: action.name, outcome: 'refused' })
          return reply
            .code(parsed.status)
            .type('application/json')
            .send(
              lookerBody({
                success: false,
                message: parsed.message,
                ...(parsed.validationErrors ? { validation_errors: parsed.validationErrors } : {}),
              }),
            )
        }
        // Nothing is produced for a destination nobody consumes: Looker is told why instead of "success".
        const unavailable = unavailableReason(
          await deps.destinations.view(),
          action.destination,
          action.label,
          parsed.request.connection,
        )
        if (unavailable !== undefined) {
          metrics.sends.inc({ action: action.name, outcome: 'refused' })
          return reply
            .code(503)
            .type('application/json')
            .send(lookerBody({ success: false, message: `Nothing was sent: ${unavailable}.` }))
        }
        if (active >= config.MAX_CONCURRENT_SENDS) {
          metrics.sends.inc({ action: action.name, outcome: 'refused' })
          return reply
            .code(503)
            .header('retry-after', '30')
            .type('application/json')
            .send(
              lookerBody({
                success: false,
                message: `lookstream is already running ${active} sends (MAX_CONCURRENT_SENDS); retry later.`,
              }),
            )
        }
        active++
        metrics.sendsInProgress.inc()
        try {
          await streamExecute(action, parsed.request, reply)
        } finally {
          active--
          metrics.sendsInProgress.dec()
        }
      },
    )

    const ListQuery = Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
      before: Type.Optional(Type.Integer({ minimum: 0 })),
    })
    hub.get('/sends', { schema: { querystring: ListQuery } }, async (request) => {
      const { limit, before } = request.query
      return deps.sends.list(before === undefined ? { limit } : { limit, before })
    })

    hub.get(
      '/sends/:id',
      { schema: { params: Type.Object({ id: Type.String({ maxLength: 128 }) }) } },
      async (request, reply) => {
        const record = await deps.sends.get(request.params.id)
        if (!record) return reply.code(404).send({ success: false, error: `No send with id ${request.params.id}.` })
        return record
      },
    )
    done()
  })

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = err.statusCode ?? 500
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply
        .code(413)
        .type('application/json')
        .send(
          lookerBody({
            success: false,
            message: `The request body is over the ${config.MAX_BODY_BYTES}-byte limit (MAX_BODY_BYTES).`,
          }),
        )
    }
    if (status >= 500) log.error({ err, url: request.url }, 'request failed')
    return reply.code(status).send({ success: false, error: status >= 500 ? 'Internal server error.' : err.message })
  })

  async function openSource(request: ExecuteRequest): Promise<AsyncIterable<Uint8Array>> {
    if (request.source.kind === 'attachment') return bufferSource(request.source.data)
    const response = await httpRequest(request.source.url, {
      method: 'GET',
      headersTimeout: config.STREAM_TIMEOUT_MS,
      bodyTimeout: config.STREAM_TIMEOUT_MS,
      headers: { accept: 'application/json' },
    })
    if (response.statusCode !== 200) {
      await response.body.dump()
      // Never parsed as data (the reference's PR #670).
      throw new Error(`Looker answered the download_url with HTTP ${response.statusCode}`)
    }
    return response.body
  }

  // A SendEvent of @lookstream/events (its TypeBox type reads `destination` as never, so typed loosely here).
  async function announce(event: { sendId: string } & Record<string, unknown>, timeoutMs?: number): Promise<void> {
    const sent = deps.producer.send({
      topic: TOPICS.sends,
      key: event.sendId,
      value: JSON.stringify(event),
      headers: { 'lookstream-producer': 'ingress', 'lookstream-send-id': event.sendId, 'lookstream-schema': 'send.v1' },
    })
    await (timeoutMs === undefined ? sent : withTimeout(sent, timeoutMs))
  }

  async function streamExecute(action: Action, request: ExecuteRequest, reply: FastifyReply): Promise<void> {
    const sendId = randomUUID()
    const receivedAt = new Date()
    const sendLog = log.child({ sendId, action: action.name, connection: request.connection })
    const raw = reply.raw
    reply.hijack()
    // Status 200 up front; from here on the answer is always a {"looker": …} body, keep-alive newlines before it.
    raw.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    raw.flushHeaders()
    // If Looker goes away mid-send the send still finishes (its rows are already streaming into Kafka);
    // writes to the closed socket are skipped and its errors only logged.
    raw.on('error', (err) => sendLog.warn({ err }, 'the Looker connection failed during the send'))
    const write = (text: string, end = false) => {
      if (raw.destroyed || raw.writableEnded) return
      if (end) raw.end(text)
      else raw.write(text)
    }
    const keepAlive = setInterval(() => write('\n'), config.KEEPALIVE_MS)
    const eventBase = {
      type: 'send' as const,
      sendId,
      producer: 'ingress',
      destination: action.destination,
      action: action.name,
      connection: request.connection,
      ...(request.lookId ? { lookId: request.lookId } : {}),
      ...(request.scheduledPlanId ? { scheduledPlanId: request.scheduledPlanId } : {}),
      ...(request.webhookId ? { webhookId: request.webhookId } : {}),
      startedAt: receivedAt.toISOString(),
    }
    let outcome: SendOutcome
    try {
      await deps.sends
        .start({
          sendId,
          action: action.name,
          destination: action.destination,
          connection: request.connection,
          startedAt: receivedAt,
          lookId: request.lookId,
          scheduledPlanId: request.scheduledPlanId,
          webhookId: request.webhookId,
        })
        .catch((err: unknown) => sendLog.error({ err }, 'could not record the send start in Redis'))
      sendLog.info({ source: request.source.kind }, 'send started')
      let startFailure: string | undefined
      try {
        await announce({ ...eventBase, phase: 'started', at: receivedAt.toISOString(), status: 'running', counts: {} })
      } catch (err) {
        startFailure = `Kafka did not acknowledge the send announcement (${err instanceof Error ? err.message : String(err)}); no row was sent`
      }
      outcome =
        startFailure !== undefined
          ? {
              success: false,
              failure: startFailure,
              received: 0,
              accepted: 0,
              rejected: 0,
              reasons: [],
              ranAt: undefined,
            }
          : await runSend(
              {
                sendId,
                action,
                context: { connection: request.connection, form: request.form, hiddenFields: request.hiddenFields },
                sendKey: request.sendKey,
                ranAtFallback: request.webhookId,
                receivedAt,
                openSource: () => openSource(request),
                maxRowBytes: config.MAX_ROW_BYTES,
                maxTrackedDistinctRows: config.MAX_TRACKED_DISTINCT_ROWS,
                maxFieldBytes: config.MAX_FIELD_BYTES,
                onProgress: (counts: SendCounts, reasons: readonly RejectReason[]) => {
                  deps.sends
                    .progress(sendId, { ...counts, rejectReasons: reasons })
                    .catch((err: unknown) => sendLog.warn({ err }, 'could not record send progress'))
                },
              },
              deps.producer,
              metrics,
            )
    } catch (err) {
      sendLog.error({ err }, 'send crashed')
      outcome = {
        success: false,
        failure: 'internal error',
        received: 0,
        accepted: 0,
        rejected: 0,
        reasons: [],
        ranAt: undefined,
      }
    }
    const finishedAt = new Date()
    const succeeded = outcome.success && outcome.rejected === 0
    const message = describeOutcome(action, request.connection, outcome)
    const status = outcome.success ? 'succeeded' : 'failed'
    metrics.sends.inc({
      action: action.name,
      outcome: !outcome.success ? 'failed' : succeeded ? 'succeeded' : 'partial',
    })
    await deps.sends
      .finish(sendId, { ...outcome, rejectReasons: outcome.reasons, status, message, finishedAt })
      .catch((err: unknown) => sendLog.error({ err }, 'could not record the send result in Redis'))
    await announce(
      {
        ...eventBase,
        phase: 'finished',
        at: finishedAt.toISOString(),
        status,
        counts: {
          received: outcome.received,
          accepted: outcome.accepted,
          rejected: outcome.rejected,
          produced: outcome.accepted,
        },
        ...(outcome.ranAt ? { ranAt: outcome.ranAt.slice(0, 64) } : {}),
        finishedAt: finishedAt.toISOString(),
        durationMs: finishedAt.getTime() - receivedAt.getTime(),
        rejectReasons: outcome.reasons,
        ...(outcome.failure ? { error: outcome.failure.slice(0, 2048) } : {}),
      },
      FINISH_EVENT_TIMEOUT_MS,
    ).catch((err: unknown) => sendLog.warn({ err }, 'could not announce the send result on Kafka'))
    sendLog.info(
      {
        status,
        received: outcome.received,
        accepted: outcome.accepted,
        rejected: outcome.rejected,
        failure: outcome.failure,
      },
      'send finished',
    )
    clearInterval(keepAlive)
    write(
      lookerBody({
        success: succeeded,
        message,
        send_id: sendId,
        rows: { received: outcome.received, accepted: outcome.accepted, rejected: outcome.rejected },
        rejected_rows: outcome.reasons,
      }),
      true,
    )
  }

  return service
}
