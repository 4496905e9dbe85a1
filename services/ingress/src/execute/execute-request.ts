import { type Action } from '../actions/action.ts'
import { type SpooledAttachment } from './execute-body.ts'
import { checkDownloadUrl, type LookerOrigin } from '../looker/looker-hosts.ts'

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

function idString(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  if (typeof value === 'string' && value.trim() !== '') return value.trim().slice(0, 128)
  return undefined
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
  // A value Looker omits (or sends empty) takes the field's default.
  const form: Record<string, string> = {}
  for (const field of action.form) {
    const given = formParams[field.name]
    const text = typeof given === 'string' ? given.trim() : typeof given === 'number' ? String(given) : ''
    if (text !== '') form[field.name] = text
    else if (field.default !== undefined) form[field.name] = field.default
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

  const scheduledPlanId = idString(plan.scheduled_plan_id)
  const webhookId = idString(webhookHeader)
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
