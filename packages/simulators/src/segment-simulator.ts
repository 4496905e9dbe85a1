import { randomUUID } from 'node:crypto'
import { matchesAnySecret, readAuthorization } from './credentials.ts'
import { isJsonContentType, isRecord, parseJson } from './json-body.ts'
import {
  type CommonSimulatorOptions,
  type Simulator,
  type SimulatorRequest,
  type SimulatorResponse,
  startSimulatorServer,
} from './simulator-server.ts'
import { type SimulatorState } from './simulator-state.ts'
import { preciseNow } from './precise-now.ts'
import { type WindowLimit, WindowRateLimiter } from './window-rate-limiter.ts'

export interface SegmentSimulatorOptions extends CommonSimulatorOptions {
  /** Write keys that authenticate (Basic `writeKey:` or `writeKey` in the body). */
  writeKeys?: string[]
  /** 500 KB per request. */
  maxBodyBytes?: number
  /** 32 KB per event. */
  maxItemBytes?: number
  /** 2,500 events per batch; above it the request still gets 200 but every event is rejected. */
  maxBatchEvents?: number
  /** How long a messageId is remembered for dedupe: 24 h. */
  dedupeWindowMs?: number
  /** Requests per window per workspace; null disables. Default 1,000 requests/s. */
  rateLimit?: WindowLimit | null
}

export const segmentDefaults = {
  writeKeys: ['segment-write-key'],
  maxBodyBytes: 500 * 1024,
  maxItemBytes: 32 * 1024,
  maxBatchEvents: 2500,
  dedupeWindowMs: 24 * 60 * 60 * 1000,
  rateLimit: { limit: 1000, windowMs: 1000 },
} as const

const singleTypes = new Set(['identify', 'track', 'page', 'screen', 'group', 'alias'])
const messageIdMaxLength = 100

// X-RateLimit-Reset carries the seconds to wait, like Retry-After (the reference notes the unit is disputed).
function rateLimitHeaders(seconds: number): Record<string, string> {
  return { 'retry-after': String(seconds), 'x-ratelimit-reset': String(seconds) }
}

function badRequest(message: string): SimulatorResponse {
  return { status: 400, body: { success: false, message } }
}

function hasId(value: unknown): boolean {
  return (typeof value === 'string' && value !== '') || (typeof value === 'number' && Number.isFinite(value))
}

// The reason codes follow what Segment's debugger shows for dropped events (no_user_anon_id etc.).
function dropReason(event: Record<string, unknown>, type: string): string | undefined {
  if (!singleTypes.has(type)) return 'invalid_type'
  if (type === 'alias') return hasId(event.previousId) && hasId(event.userId) ? undefined : 'no_previous_id_or_user_id'
  if (!hasId(event.userId) && !hasId(event.anonymousId)) return 'no_user_anon_id'
  if (type === 'track' && (typeof event.event !== 'string' || event.event === '')) return 'no_event'
  if (type === 'group' && !hasId(event.groupId)) return 'no_group_id'
  return undefined
}

export function startSegmentSimulator(options: SegmentSimulatorOptions = {}): Promise<Simulator> {
  const writeKeys = options.writeKeys ?? [...segmentDefaults.writeKeys]
  const maxBodyBytes = options.maxBodyBytes ?? segmentDefaults.maxBodyBytes
  const maxItemBytes = options.maxItemBytes ?? segmentDefaults.maxItemBytes
  const maxBatchEvents = options.maxBatchEvents ?? segmentDefaults.maxBatchEvents
  const dedupeWindowMs = options.dedupeWindowMs ?? segmentDefaults.dedupeWindowMs
  const requests = new WindowRateLimiter(
    options.rateLimit === undefined ? { ...segmentDefaults.rateLimit } : options.rateLimit,
  )

  const handle = (request: SimulatorRequest, state: SimulatorState): SimulatorResponse => {
    const match = /^\/v1\/(batch|import|identify|track|page|screen|group|alias)$/.exec(request.path)
    if (match === null || request.method !== 'POST')
      return { status: 404, body: { success: false, message: 'Not Found' } }
    const endpoint = match[1] as string
    if (!isJsonContentType(request.headers['content-type'])) return badRequest('Content-Type must be application/json')
    const parsed = parseJson(request.body)
    if (!parsed.ok || !isRecord(parsed.value)) return badRequest('Invalid JSON')
    const payload = parsed.value

    const auth = readAuthorization(request.headers)
    let writeKey: string | undefined
    if (auth.scheme === 'basic' && auth.credentials !== null) writeKey = auth.credentials.user
    else if (auth.scheme === 'none' && typeof payload.writeKey === 'string') writeKey = payload.writeKey
    if (writeKey === undefined || !matchesAnySecret(writeKey, writeKeys)) {
      return { status: 401, body: { success: false, message: 'Unauthorized: invalid or missing write key' } }
    }

    const now = Date.now()
    const limit = requests.take(writeKey, 1, now)
    if (!limit.allowed) {
      return {
        status: 429,
        headers: rateLimitHeaders(Math.max(1, Math.ceil(limit.retryAfterMs / 1000))),
        body: { success: false, message: 'Too Many Requests' },
      }
    }

    const isBatch = endpoint === 'batch' || endpoint === 'import'
    let events: unknown[]
    if (isBatch) {
      if (!Array.isArray(payload.batch)) return badRequest('batch must be an array')
      events = payload.batch
    } else {
      events = [payload]
    }
    // Only a body over the per-event limit can hold an event over it, so small requests skip the re-serialisation.
    if (request.body.length > maxItemBytes) {
      for (const event of events) {
        if (Buffer.byteLength(JSON.stringify(event) ?? '') > maxItemBytes) {
          return badRequest(`event exceeds the ${maxItemBytes}-byte limit`)
        }
      }
    }

    const record = request.record
    state.received(record, events.length)
    if (events.length > maxBatchEvents) {
      events.forEach((event, index) => {
        const id = isRecord(event) && typeof event.messageId === 'string' ? event.messageId : undefined
        state.reject(record, 'event', 'batch_too_large', { id, index, item: event })
      })
      return { status: 200, body: { success: true } }
    }

    const sharedContext = isBatch && isRecord(payload.context) ? payload.context : undefined
    const sharedIntegrations = isBatch && isRecord(payload.integrations) ? payload.integrations : undefined
    for (let index = 0; index < events.length; index++) {
      const raw = events[index]
      if (!isRecord(raw)) {
        state.reject(record, 'event', 'invalid_event', { index, item: raw })
        continue
      }
      let event = raw
      if (sharedContext !== undefined || sharedIntegrations !== undefined) {
        event = { ...raw }
        if (sharedContext !== undefined)
          event.context = { ...sharedContext, ...(isRecord(raw.context) ? raw.context : {}) }
        if (sharedIntegrations !== undefined) {
          event.integrations = { ...sharedIntegrations, ...(isRecord(raw.integrations) ? raw.integrations : {}) }
        }
      }
      const type = isBatch ? (typeof event.type === 'string' ? event.type : '') : endpoint
      const kind = singleTypes.has(type) ? type : 'event'
      const reason = dropReason(event, type)
      const suppliedId = event.messageId
      if (suppliedId !== undefined && (typeof suppliedId !== 'string' || suppliedId.length >= messageIdMaxLength)) {
        state.reject(record, kind, 'invalid_message_id', { index, item: event })
        continue
      }
      if (reason !== undefined) {
        state.reject(record, kind, reason, { id: suppliedId, index, item: event })
        continue
      }
      // Without a messageId the API assigns a random one, which is why a retried event without one duplicates.
      const messageId = suppliedId ?? `api-${randomUUID()}`
      const firstAcceptedAt = state.acceptedIds.get(messageId)
      // Compared on the clock accept() records with (preciseNow), not Date.now(): the two differ by up to a millisecond.
      if (firstAcceptedAt !== undefined && preciseNow() - firstAcceptedAt < dedupeWindowMs) {
        state.duplicate(record, kind, messageId, firstAcceptedAt, event)
        continue
      }
      state.accept(record, kind, messageId, event)
    }
    return { status: 200, body: { success: true } }
  }

  return startSimulatorServer(options, (state) => ({
    name: 'segment',
    maxBodyBytes,
    tooLarge: () => badRequest(`request body exceeds the ${maxBodyBytes}-byte limit`),
    handle: (request) => handle(request, state),
    rateLimits: { requests },
    rateLimitHeaders,
    describe: () => ({ limits: { maxBodyBytes, maxItemBytes, maxBatchEvents, dedupeWindowMs } }),
  }))
}
