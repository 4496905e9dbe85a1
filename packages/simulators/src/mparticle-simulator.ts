import { matchesAnySecret, readAuthorization } from './credentials.ts'
import { isRecord, parseJson } from './json-body.ts'
import {
  type CommonSimulatorOptions,
  type Simulator,
  type SimulatorRequest,
  type SimulatorResponse,
  startSimulatorServer,
} from './simulator-server.ts'
import { preciseNow } from './precise-now.ts'
import { type SimulatorState } from './simulator-state.ts'
import { type WindowLimit, WindowRateLimiter } from './window-rate-limiter.ts'

export interface MparticleCredential {
  key: string
  secret: string
}

export interface MparticleSimulatorOptions extends CommonSimulatorOptions {
  credentials?: MparticleCredential[]
  /** Batches per /bulkevents request: 100. */
  maxBatches?: number
  /** The body must stay under 256 KB. */
  maxBodyBytes?: number
  /** Batches per window; default 270 per second. null disables. */
  rateLimit?: WindowLimit | null
  /** Value of X-mp-rate-limit-exceeded on 429s: org, account, app, feed, workspace or acceleration. */
  rateLimitScope?: string
  /** How long a source_request_id is remembered per API key (mParticle: 30 to 60 days). */
  dedupeWindowMs?: number
}

export const mparticleDefaults = {
  credentials: [{ key: 'mparticle-key', secret: 'mparticle-secret' }],
  maxBatches: 100,
  maxBodyBytes: 256 * 1024 - 1,
  rateLimit: { limit: 270, windowMs: 1000 },
  rateLimitScope: 'app',
  dedupeWindowMs: 30 * 24 * 60 * 60 * 1000,
} as const

const environments = new Set(['production', 'development'])
const identityKeys = new Set([
  'customer_id',
  'email',
  'other',
  'other_id_2',
  'other_id_3',
  'other_id_4',
  'facebook',
  'google',
  'microsoft',
  'twitter',
  'yahoo',
  'alias',
  'facebook_custom_audience_id',
])
const customEventTypes = new Set([
  'navigation',
  'location',
  'search',
  'transaction',
  'user_content',
  'user_preference',
  'social',
  'other',
  'media',
])
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const historicalMinAgeMs = 72 * 60 * 60 * 1000
const maxAttributes = 100
const maxAttributeNameLength = 256
const maxAttributeValueLength = 4096
const maxUserAttributeList = 1000
const maxUserAttributeListEntry = 512

function badRequest(message: string): SimulatorResponse {
  return { status: 400, body: { errors: [{ code: 'BAD_REQUEST', message }] } }
}

function isScalar(value: unknown): boolean {
  return (
    typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))
  )
}

/**
 * Where an error is, for its message: `batch` (the one batch of /events) or `batches[i]`, then `.events[j]` when it
 * is in an event. Built only once an error is found, never for a valid batch.
 */
function at(batch: number, event: number): string {
  const where = batch < 0 ? 'batch' : `batches[${batch}]`
  return event < 0 ? where : `${where}.events[${event}]`
}

/** `path` is the attributes' place below `at(batch, event)`, e.g. `.user_attributes`. */
function attributesError(
  attributes: unknown,
  batch: number,
  event: number,
  path: string,
  allowLists: boolean,
): string | undefined {
  if (attributes === undefined) return undefined
  if (!isRecord(attributes)) return `${at(batch, event)}${path} must be an object`
  // Too many attributes is the error to report even when an earlier one is also invalid: count them all first.
  let count = 0
  let firstError: string | undefined
  for (const name in attributes) {
    if (!Object.hasOwn(attributes, name)) continue
    count++
    if (firstError === undefined) firstError = attributeError(name, attributes[name], batch, event, path, allowLists)
  }
  if (count > maxAttributes) return `${at(batch, event)}${path} has more than ${maxAttributes} attributes`
  return firstError
}

function attributeError(
  name: string,
  value: unknown,
  batch: number,
  event: number,
  path: string,
  allowLists: boolean,
): string | undefined {
  if (name.length > maxAttributeNameLength)
    return `${at(batch, event)}${path}: attribute name over ${maxAttributeNameLength} characters`
  if (value === null) return undefined
  if (Array.isArray(value) && allowLists) {
    if (value.length > maxUserAttributeList)
      return `${at(batch, event)}${path}.${name}: list over ${maxUserAttributeList} entries`
    if (!value.every((v) => isScalar(v) && String(v).length <= maxUserAttributeListEntry)) {
      return `${at(batch, event)}${path}.${name}: list entries must be values of at most ${maxUserAttributeListEntry} characters`
    }
    return undefined
  }
  if (!isScalar(value)) return `${at(batch, event)}${path}.${name} must be a string, number or boolean`
  if (typeof value === 'string' && value.length > maxAttributeValueLength) {
    return `${at(batch, event)}${path}.${name}: value over ${maxAttributeValueLength} characters`
  }
  return undefined
}

function eventError(
  event: unknown,
  batchIndex: number,
  index: number,
  historicalBefore: number | undefined,
): string | undefined {
  if (!isRecord(event)) return `${at(batchIndex, index)} must be an object`
  if (typeof event.event_type !== 'string' || event.event_type === '')
    return `${at(batchIndex, index)}.event_type is required`
  const data = event.data
  if (data !== undefined && !isRecord(data)) return `${at(batchIndex, index)}.data must be an object`
  if (event.event_type === 'custom_event') {
    if (data === undefined) return `${at(batchIndex, index)}.data is required`
    if (typeof data.event_name !== 'string' || data.event_name === '')
      return `${at(batchIndex, index)}.data.event_name is required`
    if (typeof data.custom_event_type !== 'string' || !customEventTypes.has(data.custom_event_type)) {
      return `${at(batchIndex, index)}.data.custom_event_type must be one of ${[...customEventTypes].join(', ')}`
    }
  }
  if (data === undefined) return undefined
  const sourceMessageId = data.source_message_id
  if (sourceMessageId !== undefined && (typeof sourceMessageId !== 'string' || !uuidPattern.test(sourceMessageId))) {
    return `${at(batchIndex, index)}.data.source_message_id must be a UUID`
  }
  const timestamp = data.timestamp_unixtime_ms
  if (timestamp !== undefined && (typeof timestamp !== 'number' || !Number.isFinite(timestamp))) {
    return `${at(batchIndex, index)}.data.timestamp_unixtime_ms must be a number`
  }
  if (historicalBefore !== undefined && (typeof timestamp !== 'number' || timestamp > historicalBefore)) {
    return `${at(batchIndex, index)}.data.timestamp_unixtime_ms must be at least 72 hours old for historical data`
  }
  return attributesError(data.custom_attributes, batchIndex, index, '.data.custom_attributes', false)
}

/** Returns why a batch is invalid, or undefined; `index` is its place in /bulkevents, -1 for /events. */
function batchError(batch: unknown, index: number, historicalBefore: number | undefined): string | undefined {
  if (!isRecord(batch)) return `${at(index, -1)} must be an object`
  if (typeof batch.environment !== 'string' || !environments.has(batch.environment)) {
    return `${at(index, -1)}.environment must be "production" or "development"`
  }
  if (batch.schema_version !== undefined && typeof batch.schema_version !== 'number')
    return `${at(index, -1)}.schema_version must be a number`
  const identities = batch.user_identities
  let identified = false
  if (identities !== undefined) {
    if (!isRecord(identities)) return `${at(index, -1)}.user_identities must be an object`
    for (const key in identities) {
      if (!Object.hasOwn(identities, key)) continue
      if (!identityKeys.has(key)) return `${at(index, -1)}.user_identities.${key} is not a known identity type`
      const value = identities[key]
      if (value === null) continue
      if (typeof value !== 'string') return `${at(index, -1)}.user_identities.${key} must be a string`
      identified = true
    }
  }
  if (batch.mpid !== undefined) identified = true
  if (isRecord(batch.device_info) && Object.keys(batch.device_info).some((key) => key !== 'platform')) identified = true
  if (!identified) return `${at(index, -1)} identifies no user (user_identities, mpid or device_info)`
  const attributes = attributesError(batch.user_attributes, index, -1, '.user_attributes', true)
  if (attributes !== undefined) return attributes
  const deleted = batch.deleted_user_attributes
  if (deleted !== undefined && (!Array.isArray(deleted) || !deleted.every((v) => typeof v === 'string'))) {
    return `${at(index, -1)}.deleted_user_attributes must be an array of strings`
  }
  if (batch.source_request_id !== undefined && typeof batch.source_request_id !== 'string') {
    return `${at(index, -1)}.source_request_id must be a string`
  }
  const events = batch.events
  if (events === undefined) return undefined
  if (!Array.isArray(events)) return `${at(index, -1)}.events must be an array`
  for (let i = 0; i < events.length; i++) {
    const error = eventError(events[i], index, i, historicalBefore)
    if (error !== undefined) return error
  }
  return undefined
}

export function startMparticleSimulator(options: MparticleSimulatorOptions = {}): Promise<Simulator> {
  const credentials = options.credentials ?? mparticleDefaults.credentials.map((c) => ({ ...c }))
  const pairs = credentials.map((c) => `${c.key}:${c.secret}`)
  const maxBatches = options.maxBatches ?? mparticleDefaults.maxBatches
  const maxBodyBytes = options.maxBodyBytes ?? mparticleDefaults.maxBodyBytes
  const rateLimitScope = options.rateLimitScope ?? mparticleDefaults.rateLimitScope
  const dedupeWindowMs = options.dedupeWindowMs ?? mparticleDefaults.dedupeWindowMs
  const batches = new WindowRateLimiter(
    options.rateLimit === undefined ? { ...mparticleDefaults.rateLimit } : options.rateLimit,
  )
  // source_request_id dedupe is scoped per API key: API key → source_request_id → when it was accepted. With one
  // key (the usual), the accepted ids are that map already (accept() records each with its time, as here), and the
  // dedupe reads them instead of keeping a second map of every id (bench/README.md, simulator CPU per item).
  const seenRequests = new Map<string, Map<string, number>>()
  const oneKey = pairs.length === 1

  const rateLimitHeaders = (seconds: number): Record<string, string> => ({
    'retry-after': String(seconds),
    'x-mp-rate-limit-exceeded': rateLimitScope,
  })

  const handle = (request: SimulatorRequest, state: SimulatorState): SimulatorResponse => {
    const match = /^(?:\/s2s)?\/v2\/(events|bulkevents|bulkevents\/historical)$/.exec(request.path)
    if (match === null || request.method !== 'POST')
      return { status: 404, body: { errors: [{ code: 'NOT_FOUND', message: 'Not Found' }] } }
    const endpoint = match[1] as string

    const auth = readAuthorization(request.headers)
    if (auth.scheme !== 'basic' || auth.credentials === null) {
      return { status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'Missing API key and secret' }] } }
    }
    const { user, password } = auth.credentials
    if (!matchesAnySecret(`${user}:${password}`, pairs)) {
      return { status: 403, body: { errors: [{ code: 'FORBIDDEN', message: 'Invalid API key or secret' }] } }
    }
    const apiKey = user

    const parsed = parseJson(request.body)
    if (!parsed.ok) return badRequest('Request body is not valid JSON')
    let list: unknown[]
    if (endpoint === 'events') {
      if (!isRecord(parsed.value)) return badRequest('/events takes one batch object')
      list = [parsed.value]
    } else {
      if (!Array.isArray(parsed.value)) return badRequest('/bulkevents takes an array of batches')
      list = parsed.value
      if (list.length > maxBatches) return badRequest(`at most ${maxBatches} batches per request`)
    }

    const now = Date.now()
    const limit = batches.take(apiKey, list.length, now)
    if (!limit.allowed) {
      return {
        status: 429,
        headers: rateLimitHeaders(Math.max(1, Math.ceil(limit.retryAfterMs / 1000))),
        body: { errors: [{ code: 'TOO_MANY_REQUESTS', message: 'Rate limit exceeded' }] },
      }
    }
    const headers: Record<string, string> = Number.isFinite(limit.limit)
      ? { 'x-mp-rate-limit-percentage-used': String(Math.round(((limit.limit - limit.remaining) / limit.limit) * 100)) }
      : {}

    const historicalBefore = endpoint === 'bulkevents/historical' ? now - historicalMinAgeMs : undefined
    const record = request.record
    state.received(record, list.length)
    if (endpoint === 'events') {
      const error = batchError(list[0], -1, historicalBefore)
      if (error !== undefined) {
        state.reject(record, 'batch', error, { index: 0, item: list[0] })
        return { ...badRequest(error), headers }
      }
    }
    let seen = oneKey ? state.acceptedIds : seenRequests.get(apiKey)
    if (seen === undefined) seenRequests.set(apiKey, (seen = new Map<string, number>()))
    for (let index = 0; index < list.length; index++) {
      const batch = list[index]
      const error = batchError(batch, index, historicalBefore)
      const sourceRequestId =
        isRecord(batch) && typeof batch.source_request_id === 'string' ? batch.source_request_id : undefined
      // A bulk request is answered 202 even when some of its batches are invalid: they are dropped silently.
      if (error !== undefined) {
        state.reject(record, 'batch', error, { id: sourceRequestId, index, item: batch })
        continue
      }
      if (sourceRequestId !== undefined) {
        const first = seen.get(sourceRequestId)
        // On accept()'s clock (preciseNow): Date.now() can read up to 1 ms behind it.
        if (first !== undefined && preciseNow() - first < dedupeWindowMs) {
          state.duplicate(record, 'batch', sourceRequestId, first, batch)
          continue
        }
        const acceptedAt = state.accept(record, 'batch', sourceRequestId, batch)
        if (!oneKey) seen.set(sourceRequestId, acceptedAt)
        continue
      }
      state.accept(record, 'batch', undefined, batch)
    }
    return { status: 202, headers }
  }

  return startSimulatorServer(options, (state) => ({
    name: 'mparticle',
    maxBodyBytes,
    tooLarge: () => ({
      status: 413,
      body: { errors: [{ code: 'PAYLOAD_TOO_LARGE', message: 'Request body must be under 256 KB' }] },
    }),
    handle: (request) => handle(request, state),
    rateLimits: { batches },
    rateLimitHeaders,
    describe: () => ({ limits: { maxBatches, maxBodyBytes, dedupeWindowMs, rateLimitScope } }),
    reset: () => seenRequests.clear(),
  }))
}
