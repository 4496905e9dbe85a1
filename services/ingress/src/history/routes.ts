import fastifyCookie from '@fastify/cookie'
import fastifyFormbody from '@fastify/formbody'
import { checkSendId, type StoredFailure } from '@lookstream/send-history'
import { stringify } from 'csv-stringify'
import { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { type SendStore } from '../sends/send-store.ts'
import { SCRIPT, STYLE } from './assets.ts'
import { matches, parseFailureFilter } from './failure-filter.ts'
import { type HistoryStore } from './history-store.ts'
import { BASE, loginPage, messagePage, sendListPage, sendPage } from './pages.ts'
import { SESSION_COOKIE, SESSION_SECONDS, ViewerAuth, type ViewerCheck } from './viewer-auth.ts'

// The send history page: GET /history (sends), GET /history/sends/:id (one send and its failed rows),
// GET /history/sends/:id/failures.csv, and the login. Read-only: nothing here can start or change a send.

export interface HistoryRoutesOptions {
  viewerToken: string
  actionHubSecret: string
  sends: SendStore
  /** Undefined when the ingress keeps no row details (no SEND_HISTORY_SECRET). */
  history: HistoryStore | undefined
  /** Secure cookies when the page is served over https. */
  secureCookies: boolean
}

const PAGE_SIZE = 100
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
}

const REFUSED_HUB_TOKEN =
  'This is an Action Hub token. It runs sends and is not accepted by the send history; sign in with the viewer token.'

function wantsHtml(request: FastifyRequest): boolean {
  return !request.url.endsWith('.csv') && !/^\s*application\/json/.test(request.headers.accept ?? '')
}

function refuse(request: FastifyRequest, reply: FastifyReply, check: Exclude<ViewerCheck, 'ok'>) {
  const status = check === 'action-hub-token' ? 403 : 401
  const message =
    check === 'action-hub-token'
      ? REFUSED_HUB_TOKEN
      : check === 'invalid'
        ? 'The viewer token or session is not valid (sessions last 12 hours).'
        : 'Sign in with the viewer token to see the send history.'
  if (!wantsHtml(request)) return reply.code(status).type('text/plain; charset=utf-8').send(message)
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .send(loginPage(check === 'missing' ? undefined : message))
}

function csvCell(text: string): string {
  // A spreadsheet would run a cell starting with = + - @ (or a tab / carriage return) as a formula.
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text
}

export function registerHistory(app: FastifyInstance, options: HistoryRoutesOptions): void {
  const auth = new ViewerAuth(options.viewerToken, options.actionHubSecret)

  void app.register(
    async (plugin) => {
      await plugin.register(fastifyCookie)
      await plugin.register(fastifyFormbody, { bodyLimit: 4096 })
      plugin.addHook('onSend', async (_request, reply) => {
        reply.headers(SECURITY_HEADERS)
      })
      plugin.addHook('onRequest', async (request, reply) => {
        const path = request.url.split('?')[0]!
        if (path === `${BASE}/login` || path.startsWith(`${BASE}/assets/`)) return
        const check = auth.checkRequest(request.headers.authorization, request.cookies[SESSION_COOKIE])
        if (check !== 'ok') return refuse(request, reply, check)
      })

      plugin.get('/assets/history.css', (_request, reply) => reply.type('text/css; charset=utf-8').send(STYLE))
      plugin.get('/assets/live.js', (_request, reply) => reply.type('text/javascript; charset=utf-8').send(SCRIPT))

      plugin.get('/login', (_request, reply) => reply.type('text/html; charset=utf-8').send(loginPage(undefined)))
      plugin.post('/login', (request, reply) => {
        const body = request.body as Record<string, unknown> | undefined
        const token = typeof body?.token === 'string' ? body.token.trim() : ''
        const check = auth.checkToken(token)
        if (check !== 'ok') return refuse(request, reply, check)
        reply.setCookie(SESSION_COOKIE, auth.issueSession(), {
          path: BASE,
          httpOnly: true,
          sameSite: 'strict',
          secure: options.secureCookies,
          maxAge: SESSION_SECONDS,
        })
        return reply.redirect(BASE, 303)
      })
      plugin.post('/logout', (_request, reply) => {
        reply.clearCookie(SESSION_COOKIE, { path: BASE })
        return reply.redirect(`${BASE}/login`, 303)
      })

      plugin.get('', async (request, reply) => {
        const query = request.query as Record<string, unknown>
        const beforeText = typeof query.before === 'string' ? query.before : undefined
        const before = beforeText === undefined ? undefined : Number(beforeText)
        if (before !== undefined && (!/^\d{1,16}$/.test(beforeText!) || !Number.isSafeInteger(before))) {
          return reply
            .code(400)
            .type('text/html; charset=utf-8')
            .send(messagePage('Bad request', '"before" must be a time in milliseconds.', true))
        }
        const listed = await options.sends.list(before === undefined ? { limit: 50 } : { limit: 50, before })
        const summaries = new Map(
          await Promise.all(
            listed.sends.map(async (s) => [s.sendId, await options.history?.summary(s.sendId)] as const),
          ),
        )
        return reply.type('text/html; charset=utf-8').send(sendListPage(listed.sends, summaries, listed.next))
      })

      const loadSend = async (request: FastifyRequest, reply: FastifyReply) => {
        const { id } = request.params as { id: string }
        try {
          checkSendId(id)
        } catch (err) {
          await reply
            .code(400)
            .type('text/html; charset=utf-8')
            .send(messagePage('Bad send id', (err as Error).message, true))
          return undefined
        }
        const send = await options.sends.get(id)
        if (!send) {
          await reply
            .code(404)
            .type('text/html; charset=utf-8')
            .send(messagePage('No such send', `No send with id ${id} is recorded (records expire).`, true))
          return undefined
        }
        return send
      }

      plugin.get('/sends/:id', async (request, reply) => {
        const send = await loadSend(request, reply)
        if (!send) return reply
        const query = request.query as Record<string, unknown>
        const parsed = parseFailureFilter(query)
        const filter = parsed.ok ? parsed.filter : {}
        const pageText = typeof query.page === 'string' ? query.page : '0'
        const page = /^\d{1,6}$/.test(pageText) ? Number(pageText) : 0
        const matching: StoredFailure[] = []
        let count = 0
        if (options.history) {
          for await (const batch of options.history.failures(send.sendId)) {
            for (const failure of batch) {
              if (!matches(failure, filter)) continue
              if (count >= page * PAGE_SIZE && count < (page + 1) * PAGE_SIZE) matching.push(failure)
              count++
            }
          }
        }
        return reply.type('text/html; charset=utf-8').send(
          sendPage({
            send,
            summary: await options.history?.summary(send.sendId),
            failures: matching,
            matching: count,
            filter,
            filterError: parsed.ok ? undefined : parsed.error,
            page,
            pageSize: PAGE_SIZE,
            detailsKept: options.history !== undefined,
            dryRun: send.mode === 'dry_run' ? await options.history?.dryRun(send.sendId) : undefined,
          }),
        )
      })

      plugin.get('/sends/:id/failures.csv', async (request, reply) => {
        const send = await loadSend(request, reply)
        if (!send) return reply
        const parsed = parseFailureFilter(request.query as Record<string, unknown>)
        if (!parsed.ok) return reply.code(400).type('text/plain; charset=utf-8').send(parsed.error)
        const csv = stringify({
          header: true,
          columns: ['row', 'stage', 'destination', 'code', 'reason', 'identity', 'message_id', 'at'],
        })
        const history = options.history
        void (async () => {
          try {
            if (history) {
              for await (const batch of history.failures(send.sendId)) {
                for (const f of batch) {
                  if (!matches(f, parsed.filter)) continue
                  const identity = Object.entries(f.identity ?? {})
                    .map(([k, v]) => `${k}=${v}`)
                    .join('; ')
                  const ok = csv.write([
                    f.row,
                    f.stage,
                    f.destination,
                    f.code,
                    csvCell(f.reason ?? ''),
                    csvCell(identity),
                    f.messageId ?? '',
                    f.at,
                  ])
                  if (!ok) await new Promise((resolve) => csv.once('drain', resolve))
                }
              }
            }
            csv.end()
          } catch (err) {
            csv.destroy(err as Error)
          }
        })()
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="send-${send.sendId}-failures.csv"`)
          .send(csv)
      })
    },
    { prefix: BASE },
  )
}
