import { type Action } from '../actions/action.ts'
import { type SpooledAttachment } from './execute-body.ts'
import { checkDownloadUrl, type LookerOrigin } from '../looker/looker-hosts.ts'
import { kindOf } from '../looker/json-detail-reader.ts'

// Validates a Looker execute body before anything streams. Errors here are answered at once, with a
// `{"looker": {...}}` body, before the keep-alive starts.

const CONNECTION = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

export type ExecuteSource =
  { kind: 'url'; url: URL } | { kind: 'attachment'; attachment: SpooledAttachment; base64: boolean }

export interface ExecuteRequest {
  connection: string
  form: Record<string, string>
  hiddenFields: Set<string>
  source: ExecuteSource
  sendKey: string
  webhookId: string | undefined
  scheduledPlanId: string | undefined
  lookId: string | undefined
}

export type ParseResult =
  | { ok: true; request: ExecuteRequest }
  | { ok: false; status: number; message: string; validationErrors?: Record<string, string> }

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

const MAX_ID_CHARACTERS = 128

/** A plan or webhook id as text; `{ tooLong }` past 128 characters (cut, two ids would become one send). */
function idString(value: unknown): string | undefined | { tooLong: true } {
  // Numbers a double cannot hold arrive as their source text (execute-body.ts): String() of the rest is exact.
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : ''
  if (text === '') return undefined
  return text.length > MAX_ID_CHARACTERS ? { tooLong: true } : text
}

export function parseExecuteRequest(
  action: Action,
  body: unknown,
  webhookHeader: string | undefined,
  lookerHosts: readonly LookerOrigin[],
  spooled?: SpooledAttachment,
): ParseResult {
  if (!isObject(body)) return { ok: false, status: 400, message: 'The execute body is not a JSON object.' }
  if (body.type !== 'query') {
    return {
      ok: false,
      status: 400,
      message: `This action supports the query type only; the request type was ${JSON.stringify(body.type ?? null)}.`,
    }
  }
  const formParams = isObject(body.form_params) ? body.form_params : {}
  // A value Looker omits (or sends empty or null) takes the field's default. Looker sends strings; a number is taken
  // as its text (exact: a number a double cannot hold arrives as its source text, execute-body.ts); a value of
  // another type is refused by name rather than replaced by the default (an array `connection` would otherwise send
  // to the default connection, an array `lookstream_run` would make a dry run a real send).
  const form: Record<string, string> = {}
  const typeErrors: Record<string, string> = {}
  for (const field of action.form) {
    const given = Object.hasOwn(formParams, field.name) ? formParams[field.name] : undefined
    let text: string
    if (typeof given === 'string') text = given.trim()
    else if (given === undefined || given === null) text = ''
    else if (typeof given === 'number') text = String(given)
    else {
      typeErrors[field.name] = `${field.label} must be text; form_params.${field.name} is ${kindOf(given)}.`
      continue
    }
    if (text !== '') form[field.name] = text
    else if (field.default !== undefined) form[field.name] = field.default
  }
  if (Object.keys(typeErrors).length > 0) {
    return { ok: false, status: 200, message: Object.values(typeErrors).join(' '), validationErrors: typeErrors }
  }
  const validationErrors = action.validateForm?.(form) ?? {}
  const connection = form.connection ?? 'default'
  if (!CONNECTION.test(connection))
    validationErrors.connection = `Connection ${JSON.stringify(connection)} is not a valid connection name.`
  if (Object.keys(validationErrors).length > 0) {
    return { ok: false, status: 200, message: Object.values(validationErrors).join(' '), validationErrors }
  }

  const plan = isObject(body.scheduled_plan) ? body.scheduled_plan : {}
  const query = isObject(plan.query) ? plan.query : {}
  const visConfig = isObject(query.vis_config) ? query.vis_config : {}
  const hidden = Array.isArray(visConfig.hidden_fields)
    ? visConfig.hidden_fields.filter((f) => typeof f === 'string')
    : []

  let source: ExecuteSource
  const downloadUrl = typeof plan.download_url === 'string' && plan.download_url !== '' ? plan.download_url : undefined
  const attachment = isObject(body.attachment) ? body.attachment : undefined
  if (downloadUrl !== undefined) {
    const checked = checkDownloadUrl(downloadUrl, lookerHosts)
    if (!checked.ok) return { ok: false, status: 200, message: checked.reason }
    source = { kind: 'url', url: checked.url }
  } else if (attachment !== undefined && spooled !== undefined) {
    const mimetype = typeof attachment.mimetype === 'string' ? attachment.mimetype : ''
    source = { kind: 'attachment', attachment: spooled, base64: /;\s*base64$/i.test(mimetype) }
  } else {
    return {
      ok: false,
      status: 200,
      message:
        'A streaming action was sent incompatible data: the request has neither scheduled_plan.download_url nor an attachment.',
    }
  }

  const tooLong = (name: string): ParseResult => ({
    ok: false,
    status: 400,
    message: `${name} is longer than ${MAX_ID_CHARACTERS} characters.`,
  })
  const scheduledPlanId = idString(plan.scheduled_plan_id)
  if (typeof scheduledPlanId === 'object') return tooLong("The execute body's scheduled_plan.scheduled_plan_id")
  const webhookId = idString(webhookHeader)
  if (typeof webhookId === 'object') return tooLong('The X-Looker-Webhook-Id header')
  const sendKey =
    scheduledPlanId !== undefined
      ? `plan:${scheduledPlanId}`
      : webhookId !== undefined
        ? `webhook:${webhookId}`
        : source.kind === 'url'
          ? `url:${source.url.href}`
          : `attachment:${source.attachment.sha256}`
  const lookUrl = typeof plan.url === 'string' ? plan.url : ''
  const lookId = /\/looks\/(\d+)/.exec(lookUrl)?.[1]
  return {
    ok: true,
    request: { connection, form, hiddenFields: new Set(hidden), source, sendKey, webhookId, scheduledPlanId, lookId },
  }
}
