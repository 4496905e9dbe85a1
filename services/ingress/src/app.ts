import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { TOPICS, type ConnectionSettings, type RejectReason } from '@lookstream/events'
import { createService, type Service } from '@lookstream/service'
import { type FastifyReply, type FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { request as httpRequest } from 'undici'
import { actions, findAction } from './actions/index.ts'
import { type Action } from './actions/action.ts'
import { type IngressConfig } from './config.ts'
import { unavailableReason, type DestinationDirectory } from './destinations/directory.ts'
import {
  AttachmentDecodeError,
  attachmentSource,
  ExecuteBodyError,
  readExecuteBody,
  type ExecuteBody,
  type SpooledAttachment,
} from './execute/execute-body.ts'
import { parseExecuteRequest, type ExecuteRequest } from './execute/execute-request.ts'
import { runSend, SendFailure, type MessageProducer, type SendCounts, type SendOutcome } from './execute/run-send.ts'
import { createIngressMetrics } from './ingress-metrics.ts'
import { actionJson, formJson } from './looker/action-json.ts'
import { parseLookerHosts } from './looker/looker-hosts.ts'
import { lookerVersionFrom } from './looker/looker-version.ts'
import { isAuthorized } from './looker/token.ts'
import { type SendStore } from './sends/send-store.ts'
import { type HistoryStore } from './history/history-store.ts'
import { sendHistoryHooks, sendPageUrl, sendPointer } from './history/ingress-hooks.ts'
import { describeChangedRows, openChangedRows, type ChangedRows } from './history/changed-rows.ts'
import { describeDryRun, DryRunProducer } from './history/dry-run.ts'
import { destinationCheck, uncheckedReason } from './history/destination-checks.ts'
import { sendOptionsOf } from './history/send-options.ts'
import { registerHistory } from './history/routes.ts'

export interface IngressDeps {
  producer: MessageProducer
  sends: SendStore
  /** The failed rows kept for the send history page (needs SEND_HISTORY_SECRET). */
  history?: HistoryStore
  /** The running destination services and their connections (the destination registry). */
  destinations: DestinationDirectory
  /** Readiness checks for /readyz (Kafka, Redis). */
  readiness?: Parameters<typeof createService>[0]['readiness']
  logger?: Parameters<typeof createService>[0]['logger']
}

const FORBIDDEN = { success: false, error: "Invalid 'Authorization' header." }
const FINISH_EVENT_TIMEOUT_MS = 10_000
// A finished event Kafka did not acknowledge is retried in the background, backing off up to this.
const FINISH_EVENT_MAX_BACKOFF_MS = 30_000
// On shutdown, finished events still unacknowledged get this long for a last attempt.
const FINISH_EVENT_SHUTDOWN_MS = 10_000
const VERSION = '0.1.0'

// Pushed data is read back from its spool file and decoded as it streams into the same reader a download uses.
async function* pushedSource(
  attachment: SpooledAttachment,
  base64: boolean,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  try {
    yield* attachmentSource(attachment, base64, signal)
  } catch (err) {
    if (err instanceof AttachmentDecodeError) throw new SendFailure(err.message)
    throw err
  }
}

async function* noBody(): AsyncGenerator<Uint8Array> {}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function notFound(reply: FastifyReply, name: string) {
  return reply.code(404).send({ success: false, error: `No action found with name ${name}.` })
}

function lookerBody(outcome: { success: boolean; message: string } & Record<string, unknown>): string {
  return JSON.stringify({ looker: outcome })
}

function describeOutcome(
  action: Action,
  connection: string,
  outcome: SendOutcome,
  pointer: string,
  /** Rows left out as unchanged ("changed rows only"): read, neither accepted nor rejected. */
  skipped = 0,
): string {
  const reasons = outcome.reasons.map((r) => `row ${r.row}: ${r.reason}`).join('; ')
  const unsent = outcome.received - outcome.accepted - outcome.rejected - skipped
  const rows =
    `${outcome.accepted} of ${outcome.received} rows accepted (acknowledged by Kafka), ${outcome.rejected} rejected` +
    (unsent > 0 ? `, ${unsent} not acknowledged` : '')
  const where = `${action.label} (connection ${connection})`
  const head =
    outcome.failure === undefined
      ? `Sent to ${where}: ${rows}.`
      : `Send to ${where} failed: ${outcome.failure.replace(/\.$/, '')}. ${rows}.`
  const notes = (outcome.notes ?? []).map((note) => ` Note: ${note}`).join('')
  return reasons === ''
    ? `${head} ${pointer}${notes}`
    : `${head} ${pointer} First rejected rows: ${reasons}${outcome.rejected > outcome.reasons.length ? '; …' : ''}.${notes}`
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
  // Spool directories of pushed attachments still being removed (shutdown waits for them).
  const spoolRemovals = new Set<Promise<void>>()

  const baseUrl = (request: FastifyRequest) => config.PUBLIC_URL ?? `${request.protocol}://${request.host}`

  if (config.VIEWER_TOKEN !== undefined) {
    registerHistory(app, {
      viewerToken: config.VIEWER_TOKEN,
      actionHubSecret: config.ACTION_HUB_SECRET,
      sends: deps.sends,
      history: deps.history,
      secureCookies: config.PUBLIC_URL?.startsWith('https:') ?? false,
    })
  }

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

    // The listing, action and form calls carry a body lookstream does not read (Looker sends `{}` or the form's
    // values): any body is taken and left unparsed, an empty one included (a JSON parser refuses that with a 400).
    hub.removeAllContentTypeParsers()
    hub.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, parsed) => parsed(null, undefined))

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

    // The execute route reads its body itself (execute-body.ts): a send slot is taken before a byte of the body is
    // read, and pushed data is spooled to disk, never held whole.
    void hub.register((scope, _opts, registered) => {
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', (_request, payload, parsed) => parsed(null, payload))
      const execute = scope.withTypeProvider<TypeBoxTypeProvider>()
      execute.post(
        '/actions/:name/execute',
        {
          schema: { params: ActionParams },
          onRequest: async (request, reply) => {
            const action = findAction(request.params.name)
            if (!action) return notFound(reply, request.params.name)
            const refuse = (status: number, message: string) => {
              metrics.sends.inc({ action: action.name, outcome: 'refused' })
              // The body is left unread: the connection closes after this answer.
              return reply
                .code(status)
                .header('connection', 'close')
                .type('application/json')
                .send(lookerBody({ success: false, message }))
            }
            const length = Number(request.headers['content-length'])
            if (length > config.MAX_BODY_BYTES) {
              return refuse(413, `The request body is over the ${config.MAX_BODY_BYTES}-byte limit (MAX_BODY_BYTES).`)
            }
            if (active >= config.MAX_CONCURRENT_SENDS) {
              void reply.header('retry-after', '30')
              return refuse(503, `lookstream is already running ${active} sends (MAX_CONCURRENT_SENDS); retry later.`)
            }
            active++
            metrics.sendsInProgress.inc()
            let released = false
            reply.raw.once('close', () => {
              if (released) return
              released = true
              active--
              metrics.sendsInProgress.dec()
            })
          },
        },
        async (request, reply) => {
          const action = findAction(request.params.name)!
          // The deadline covers reading the body too: a trickling upload holds a slot like a trickling download.
          const deadline = AbortSignal.timeout(config.SEND_DEADLINE_MS)
          let body: ExecuteBody
          try {
            // Fastify runs no content-type parser for a body of 0 bytes: request.body is then undefined.
            body = await readExecuteBody((request.body ?? noBody()) as AsyncIterable<Uint8Array>, {
              maxBodyBytes: config.MAX_BODY_BYTES,
              maxEnvelopeBytes: config.MAX_ENVELOPE_BYTES,
              spoolDir: config.SPOOL_DIR ?? tmpdir(),
              deadline: { signal: deadline, ms: config.SEND_DEADLINE_MS },
            })
          } catch (err) {
            metrics.sends.inc({ action: action.name, outcome: 'refused' })
            if (!(err instanceof ExecuteBodyError)) {
              log.warn({ err, action: action.name }, 'the execute body could not be read')
              return reply
                .code(400)
                .header('connection', 'close')
                .send({ success: false, error: errorText(err) })
            }
            return reply
              .code(err.status)
              .header('connection', 'close')
              .type('application/json')
              .send(lookerBody({ success: false, message: err.message }))
          }
          try {
            const webhook = request.headers['x-looker-webhook-id']
            const parsed = parseExecuteRequest(
              action,
              body.envelope,
              typeof webhook === 'string' ? webhook : undefined,
              lookerHosts,
              body.attachment,
            )
            if (!parsed.ok) {
              metrics.sends.inc({ action: action.name, outcome: 'refused' })
              return await reply
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
            const view = await deps.destinations.view()
            const unavailable = unavailableReason(view, action.destination, action.label, parsed.request.connection)
            if (unavailable !== undefined) {
              metrics.sends.inc({ action: action.name, outcome: 'refused' })
              return await reply
                .code(503)
                .type('application/json')
                .send(lookerBody({ success: false, message: `Nothing was sent: ${unavailable}.` }))
            }
            // What the connection would refuse for every row (e.g. a Heap environment it does not allow) ends the
            // send here, named, instead of dead-lettering every row (docs/adr/0015-connection-settings-in-the-registry.md).
            const settings = view.known
              ? view.live.get(action.destination)?.settings[parsed.request.connection]
              : undefined
            const refused =
              settings === undefined || action.checkSettings === undefined
                ? {}
                : action.checkSettings(parsed.request.form, parsed.request.connection, settings)
            if (Object.keys(refused).length > 0) {
              metrics.sends.inc({ action: action.name, outcome: 'refused' })
              return await reply
                .code(200)
                .type('application/json')
                .send(
                  lookerBody({
                    success: false,
                    message: `Nothing was sent: ${Object.values(refused).join(' ')}`,
                    validation_errors: refused,
                  }),
                )
            }
            await streamExecute(action, parsed.request, reply, deadline, baseUrl(request), settings)
          } finally {
            // Looker may have its answer already; shutdown waits for the spool to be removed all the same.
            const removed = body.cleanup()
            spoolRemovals.add(removed)
            await removed.finally(() => spoolRemovals.delete(removed))
          }
        },
      )
      registered()
    })

    const ListQuery = Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
      before: Type.Optional(Type.Integer({ minimum: 0 })),
    })
    const storeUnavailable = (reply: FastifyReply, err: unknown) => {
      log.warn({ err }, 'the send store (Redis) did not answer')
      return reply.code(503).send({ success: false, error: `The send store (Redis) did not answer: ${errorText(err)}` })
    }
    hub.get('/sends', { schema: { querystring: ListQuery } }, async (request, reply) => {
      const { limit, before } = request.query
      try {
        return await deps.sends.list(before === undefined ? { limit } : { limit, before })
      } catch (err) {
        return storeUnavailable(reply, err)
      }
    })

    hub.get(
      '/sends/:id',
      { schema: { params: Type.Object({ id: Type.String({ maxLength: 128 }) }) } },
      async (request, reply) => {
        let record: Awaited<ReturnType<SendStore['get']>>
        try {
          record = await deps.sends.get(request.params.id)
        } catch (err) {
          return storeUnavailable(reply, err)
        }
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

  async function openSource(request: ExecuteRequest, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    if (request.source.kind === 'attachment') {
      return pushedSource(request.source.attachment, request.source.base64, signal)
    }
    const response = await httpRequest(request.source.url, {
      method: 'GET',
      headersTimeout: config.STREAM_TIMEOUT_MS,
      bodyTimeout: config.STREAM_TIMEOUT_MS,
      headers: { accept: 'application/json' },
      signal,
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

  // Finished events that Kafka has not acknowledged yet, retried in the background until it does.
  const undelivered = new Set<Promise<void>>()
  let closing = false
  const closed = new AbortController()

  async function deliverFinished(event: { sendId: string } & Record<string, unknown>, sendLog: typeof log) {
    let backoff = 1000
    for (let attempt = 2; ; attempt++) {
      await sleep(backoff, undefined, { signal: closed.signal }).catch(() => {})
      try {
        await announce(event, closing ? FINISH_EVENT_SHUTDOWN_MS : FINISH_EVENT_TIMEOUT_MS)
        sendLog.info({ attempt }, 'announced the send result on Kafka')
        return
      } catch (err) {
        if (closing) {
          sendLog.error({ err, attempt }, 'shutting down without announcing the send result on Kafka')
          return
        }
        sendLog.warn({ err, attempt }, 'could not announce the send result on Kafka; retrying')
        backoff = Math.min(backoff * 2, FINISH_EVENT_MAX_BACKOFF_MS)
      }
    }
  }

  app.addHook('onClose', async () => {
    closing = true
    closed.abort()
    await Promise.all([...undelivered, ...spoolRemovals])
  })

  async function streamExecute(
    action: Action,
    request: ExecuteRequest,
    reply: FastifyReply,
    deadline: AbortSignal,
    publicBase: string,
    /** What the destination service announced for the send's connection in the registry (ADR 0015). */
    settings: ConnectionSettings | undefined,
  ): Promise<void> {
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
    const recorder = deps.history?.recorder(sendId, (err) => sendLog.warn({ err }, 'could not record failed rows'))
    const sendOptions = sendOptionsOf(request.form)
    let changed: ChangedRows | undefined
    const dryRun =
      sendOptions.run === 'dry_run'
        ? new DryRunProducer(
            destinationCheck(action.destination, request.connection, settings) ?? {
              notChecked: uncheckedReason(action.destination, request.connection),
            },
            action.destination,
            recorder,
          )
        : undefined
    let outcome: SendOutcome
    // Redis failures do not stop a send (its rows go to Kafka all the same); Looker is told the record is incomplete.
    let recordFailure: string | undefined
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
          mode: dryRun ? 'dry_run' : 'send',
        })
        .catch((err: unknown) => {
          recordFailure = errorText(err)
          sendLog.error({ err }, 'could not record the send start in Redis')
        })
      sendLog.info({ source: request.source.kind }, 'send started')
      const opened = await openChangedRows(
        deps.history,
        { action: action.name, connection: request.connection, planId: request.scheduledPlanId },
        sendOptions.rows,
        !dryRun,
      )
      changed = opened.changed
      let startFailure: string | undefined = opened.failure
      try {
        // A dry run produces nothing on Kafka, not even its announcements.
        if (!dryRun && startFailure === undefined)
          await announce({
            ...eventBase,
            phase: 'started',
            at: receivedAt.toISOString(),
            status: 'running',
            counts: {},
          })
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
                openSource: () => openSource(request, deadline),
                maxRowBytes: config.MAX_ROW_BYTES,
                maxTrackedDistinctRows: config.MAX_TRACKED_DISTINCT_ROWS,
                maxFieldBytes: config.MAX_FIELD_BYTES,
                maxFields: config.MAX_FIELDS,
                maxDepth: config.MAX_VALUE_DEPTH,
                maxResultBytes: config.MAX_RESULT_BYTES,
                deadline: { signal: deadline, ms: config.SEND_DEADLINE_MS },
                onInternalError: (err, where) => sendLog.error({ err, where }, 'mapping failed (internal error)'),
                ...sendHistoryHooks(recorder, action.destination, changed),
                onProgress: (counts: SendCounts, reasons: readonly RejectReason[]) => {
                  deps.sends
                    .progress(sendId, {
                      ...counts,
                      rejectReasons: reasons,
                      ...(changed ? { skippedUnchanged: changed.counts.skipped } : {}),
                    })
                    .catch((err: unknown) => sendLog.warn({ err }, 'could not record send progress'))
                },
              },
              dryRun ?? deps.producer,
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
    await recorder?.close()
    const dryRunReport = dryRun?.result()
    if (dryRunReport) {
      await deps.history
        ?.saveDryRun(sendId, dryRunReport)
        .catch((err: unknown) => sendLog.warn({ err }, 'could not record the dry run report'))
    }
    let remembered = false
    if (changed && !dryRun && outcome.success) {
      remembered = await changed.commit(sendId).then(
        () => true,
        (err: unknown) => {
          sendLog.warn({ err }, 'could not remember the rows for the next changed-only run')
          return false
        },
      )
    } else if (changed) {
      // The run did not finish: the chunks it wrote are not a generation (a failed commit leaves its own, which the
      // meta may already name).
      await changed
        .abandon()
        .catch((err: unknown) =>
          sendLog.warn({ err }, "could not remove the rows this run wrote for the next run's comparison"),
        )
    }
    const finishedAt = new Date()
    const succeeded = outcome.success && outcome.rejected === 0 && (dryRunReport?.refusedRows ?? 0) === 0
    const pointer = sendPointer(sendId, config.VIEWER_TOKEN === undefined ? undefined : sendPageUrl(publicBase, sendId))
    const verdict = (withSample: boolean) =>
      (dryRunReport
        ? describeDryRun(
            `${action.label} (connection ${request.connection})`,
            action.label,
            outcome,
            dryRunReport,
            pointer,
            withSample,
          )
        : describeOutcome(action, request.connection, outcome, pointer, changed?.counts.skipped ?? 0)) +
      (changed ? ` ${describeChangedRows(changed, remembered)}` : '')
    // Looker's answer may show a dry run's first sample payload; the send record never holds row values.
    let message = verdict(true)
    const recordMessage = verdict(false)
    const status = outcome.success ? 'succeeded' : 'failed'
    metrics.sends.inc({
      action: action.name,
      outcome: !outcome.success ? 'failed' : succeeded ? 'succeeded' : 'partial',
    })
    await deps.sends
      .finish(sendId, {
        ...outcome,
        rejectReasons: outcome.reasons,
        status,
        message: recordMessage,
        finishedAt,
        ...(changed ? { skippedUnchanged: changed.counts.skipped } : {}),
      })
      .catch((err: unknown) => {
        recordFailure ??= errorText(err)
        sendLog.error({ err }, 'could not record the send result in Redis')
      })
    if (recordFailure !== undefined) {
      message += ` The send's record in Redis (GET /sends/${sendId}) is incomplete: ${recordFailure.replace(/\.$/, '')}.`
    }
    const finishedEvent = {
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
    }
    // Every started send gets its finished event: when Kafka does not take it now, it is retried until it does.
    // A dry run produces nothing on Kafka.
    if (!dryRun)
      await announce(finishedEvent, FINISH_EVENT_TIMEOUT_MS).catch((err: unknown) => {
        sendLog.warn({ err }, 'could not announce the send result on Kafka; retrying in the background')
        const delivery = deliverFinished(finishedEvent, sendLog)
        undelivered.add(delivery)
        void delivery.finally(() => undelivered.delete(delivery))
      })
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
        rows: {
          received: outcome.received,
          accepted: outcome.accepted,
          rejected: outcome.rejected,
          ...(changed
            ? {
                skipped_unchanged: changed.counts.skipped,
                resent_after_failure: changed.counts.resentAfterFailure,
              }
            : {}),
        },
        rejected_rows: outcome.reasons,
        ...(dryRunReport
          ? {
              dry_run: {
                messages: dryRunReport.messages,
                refused_rows: dryRunReport.refusedRows,
                checks: dryRunReport.checks,
                problems: dryRunReport.problems,
                sample_payloads: dryRunReport.samples,
              },
            }
          : {}),
      }),
      true,
    )
  }

  return service
}
