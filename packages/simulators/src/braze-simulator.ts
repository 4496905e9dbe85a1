import { AdminInputError } from './admin-input-error.ts'
import { type BrazeIdentifier, describeIdentifier, readBrazeIdentifier } from './braze-identifier.ts'
import {
  attributeValueError,
  type AttributeUpdate,
  type BrazeProfile,
  type BrazeProfileSeed,
  BrazeProfileStore,
} from './braze-profile-store.ts'
import { digestMatchesAnySecret, readAuthorization, secretDigest } from './credentials.ts'
import { isRecord, parseJson } from './json-body.ts'
import {
  type AdminRequest,
  type CommonSimulatorOptions,
  type Simulator,
  type SimulatorRequest,
  type SimulatorResponse,
  startSimulatorServer,
} from './simulator-server.ts'
import { type RequestRecord, type SimulatorState } from './simulator-state.ts'
import { type WindowDecision, type WindowLimit, WindowRateLimiter } from './window-rate-limiter.ts'

export interface BrazeSimulatorOptions extends CommonSimulatorOptions {
  /** REST API keys with the users.track permission. */
  apiKeys?: string[]
  /** Keys that exist but lack users.track: answered with 403. */
  restrictedApiKeys?: string[]
  /** Objects per request: 75 combined by default; "per-array" allows that many in each array (legacy accounts). */
  maxObjects?: number
  objectLimitMode?: 'combined' | 'per-array'
  /** 4 MB; above it 413. */
  maxBodyBytes?: number
  maxArrayLength?: number
  maxObjectArrayBytes?: number
  /** Requests per window for /users/track; default 3,000 per 3 s. null disables. */
  rateLimit?: WindowLimit | null
  /**
   * Keys that also hold users.track.bulk, for `POST /users/track/bulk` (default: every key of apiKeys); any other
   * key is answered 403 there.
   */
  bulkApiKeys?: string[]
  /** Objects per /users/track/bulk request, combined: 1,000. */
  maxBulkObjects?: number
  /** 2 MB per /users/track/bulk request; above it 413. */
  maxBulkBodyBytes?: number
  /** Requests per window for /users/track/bulk, a budget of its own; default 50 per second. null disables. */
  bulkRateLimit?: WindowLimit | null
  /** Status of a (partially) successful /users/track call: Braze answers 201 Created. */
  successStatus?: number
  /** Profiles that exist before the first request (and again after a reset). */
  profiles?: BrazeProfileSeed[]
}

export interface BrazeSimulator extends Simulator {
  profiles: BrazeProfileStore
}

export const brazeDefaults = {
  apiKeys: ['braze-api-key'],
  maxObjects: 75,
  objectLimitMode: 'combined',
  maxBodyBytes: 4 * 1024 * 1024,
  maxArrayLength: 25,
  maxObjectArrayBytes: 100 * 1024,
  rateLimit: { limit: 3000, windowMs: 3000 },
  maxBulkObjects: 1000,
  maxBulkBodyBytes: 2 * 1024 * 1024,
  bulkRateLimit: { limit: 50, windowMs: 1000 },
  successStatus: 201,
} as const

type InputArray = 'attributes' | 'events' | 'purchases'

interface BrazeError {
  type: string
  input_array: InputArray
  index: number
}

const noDataMessage = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
const currencyPattern = /^[A-Za-z]{3}$/
const maxPropertyBytes = 50 * 1024

function isIsoTime(value: unknown): boolean {
  return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(Date.parse(value))
}

function propertiesError(properties: unknown): string | undefined {
  if (properties === undefined) return undefined
  if (!isRecord(properties)) return "'properties' must be an object"
  for (const [key, value] of Object.entries(properties)) {
    if (key.length > 255 || key.startsWith('$')) return `'${key}' is not a valid property name`
    if (typeof value === 'string' && value.length > 255) return `'${key}' exceeds 255 characters`
    if (typeof value === 'object' && value !== null && Buffer.byteLength(JSON.stringify(value)) > maxPropertyBytes) {
      return `'${key}' exceeds ${maxPropertyBytes} bytes`
    }
  }
  return undefined
}

function eventError(event: Record<string, unknown>): string | undefined {
  if (typeof event.name !== 'string' || event.name === '') return "'name' is required"
  if (!isIsoTime(event.time)) return "'time' is not valid"
  if (event.app_id !== undefined && typeof event.app_id !== 'string') return "'app_id' is not valid"
  return propertiesError(event.properties)
}

function purchaseError(purchase: Record<string, unknown>): string | undefined {
  if (typeof purchase.product_id !== 'string' || purchase.product_id === '') return "'product_id' is not valid"
  if (typeof purchase.currency !== 'string' || !currencyPattern.test(purchase.currency))
    return "'currency' is not valid"
  if (typeof purchase.price !== 'number' || !Number.isFinite(purchase.price)) return "'price' is not valid"
  const quantity = purchase.quantity
  if (
    quantity !== undefined &&
    (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1 || quantity > 100)
  ) {
    return "'quantity' is not valid"
  }
  if (!isIsoTime(purchase.time)) return "'time' is not valid"
  return propertiesError(purchase.properties)
}

function attributesError(object: Record<string, unknown>): string | undefined {
  for (const name in object) {
    if (!Object.hasOwn(object, name)) continue
    const value = object[name]
    if (name === 'external_id' || name === 'braze_id' || name === 'user_alias' || name === 'push_token_import') continue
    if (name === '_update_existing_only' || name === '_merge_objects') {
      if (typeof value !== 'boolean') return `'${name}' must be a boolean`
      continue
    }
    const error = attributeValueError(name, value)
    if (error !== undefined) return error
  }
  return undefined
}

function fail(
  state: SimulatorState,
  record: RequestRecord,
  errors: BrazeError[],
  arrayName: InputArray,
  index: number,
  item: unknown,
  type: string,
): void {
  errors.push({ type, input_array: arrayName, index })
  state.reject(record, arrayName, type, { index, item })
}

function rateHeaders(decision: WindowDecision): Record<string, string> {
  if (!Number.isFinite(decision.limit)) return {}
  return {
    'x-ratelimit-limit': String(decision.limit),
    'x-ratelimit-remaining': String(decision.remaining),
    // Braze documents Reset as UTC epoch seconds.
    'x-ratelimit-reset': String(Math.ceil(decision.resetAt / 1000)),
  }
}

function parseSeeds(body: unknown): BrazeProfileSeed[] {
  const seeds = Array.isArray(body) ? body : isRecord(body) && Array.isArray(body.profiles) ? body.profiles : undefined
  if (seeds === undefined || !seeds.every(isRecord))
    throw new AdminInputError('body must be an array of profiles or {profiles: [...]}')
  return seeds
}

export async function startBrazeSimulator(options: BrazeSimulatorOptions = {}): Promise<BrazeSimulator> {
  const apiKeys = options.apiKeys ?? [...brazeDefaults.apiKeys]
  const restrictedApiKeys = options.restrictedApiKeys ?? []
  const maxObjects = options.maxObjects ?? brazeDefaults.maxObjects
  const objectLimitMode = options.objectLimitMode ?? brazeDefaults.objectLimitMode
  const maxBodyBytes = options.maxBodyBytes ?? brazeDefaults.maxBodyBytes
  const seeds = options.profiles ?? []
  const successStatus = options.successStatus ?? brazeDefaults.successStatus
  const requests = new WindowRateLimiter(
    options.rateLimit === undefined ? { ...brazeDefaults.rateLimit } : options.rateLimit,
  )
  const bulkApiKeys = options.bulkApiKeys ?? apiKeys
  const maxBulkObjects = options.maxBulkObjects ?? brazeDefaults.maxBulkObjects
  const maxBulkBodyBytes = options.maxBulkBodyBytes ?? brazeDefaults.maxBulkBodyBytes
  const bulkRequests = new WindowRateLimiter(
    options.bulkRateLimit === undefined ? { ...brazeDefaults.bulkRateLimit } : options.bulkRateLimit,
  )
  const profiles = new BrazeProfileStore({
    maxArrayLength: options.maxArrayLength ?? brazeDefaults.maxArrayLength,
    maxObjectArrayBytes: options.maxObjectArrayBytes ?? brazeDefaults.maxObjectArrayBytes,
  })
  profiles.seed(seeds)
  // What applyAttributesInto drops from the item being processed (emptied before each).
  const dropped: AttributeUpdate['dropped'] = []

  // Update-only defaults to true for aliases (an alias-only profile needs an explicit false) and false otherwise;
  // braze_ids are assigned by Braze, so an unknown one can never be created.
  const resolveProfile = (identifier: BrazeIdentifier, object: Record<string, unknown>): BrazeProfile | undefined => {
    const existing = profiles.find(identifier)
    if (existing !== undefined) return existing
    const updateOnly =
      typeof object._update_existing_only === 'boolean'
        ? object._update_existing_only
        : identifier.kind === 'user_alias'
    if (updateOnly || identifier.kind === 'braze_id') return undefined
    return profiles.create(identifier)
  }

  const processArray = (
    state: SimulatorState,
    record: RequestRecord,
    arrayName: InputArray,
    items: unknown[],
    errors: BrazeError[],
  ): number => {
    let processed = 0
    for (let index = 0; index < items.length; index++) {
      const item = items[index]
      if (!isRecord(item)) {
        fail(state, record, errors, arrayName, index, item, `${arrayName} entries must be objects`)
        continue
      }
      const identified = readBrazeIdentifier(item)
      if (!identified.ok) {
        fail(state, record, errors, arrayName, index, item, identified.error)
        continue
      }
      const error =
        arrayName === 'attributes'
          ? attributesError(item)
          : arrayName === 'events'
            ? eventError(item)
            : purchaseError(item)
      if (error !== undefined) {
        fail(state, record, errors, arrayName, index, item, error)
        continue
      }
      processed++
      const profile = resolveProfile(identified.identifier, item)
      const who = describeIdentifier(identified.identifier)
      if (profile === undefined) {
        state.skip(record, arrayName, `no existing profile for ${who} (update-only)`, { id: who, index, item })
        continue
      }
      if (arrayName === 'attributes') {
        dropped.length = 0
        profiles.applyAttributesInto(profile, item, dropped)
        for (const drop of dropped) {
          state.skip(record, arrayName, `${drop.attribute}: ${drop.reason}`, { id: who, index, item })
        }
      } else if (arrayName === 'events') {
        profile.events++
      } else {
        profile.purchases++
      }
      // Keyed by the identifier (e.g. external_id:u1): Braze has no message id, the user is what an update names.
      state.accept(record, arrayName, who, item)
    }
    return processed
  }

  const handle = (request: SimulatorRequest, state: SimulatorState): SimulatorResponse => {
    // /users/track/bulk takes the same body: up to 1,000 objects and 2 MB, on a key with users.track.bulk and a
    // rate budget of its own.
    const bulk = request.path === '/users/track/bulk'
    if ((request.path !== '/users/track' && !bulk) || request.method !== 'POST')
      return { status: 404, body: { message: 'Not Found' } }
    const auth = readAuthorization(request.headers)
    const token = auth.scheme === 'bearer' ? auth.token : ''
    // Every key of the lists is compared, whichever matches; the token is hashed once.
    const tokenDigest = token === '' ? undefined : secretDigest(token)
    const known = tokenDigest !== undefined && digestMatchesAnySecret(tokenDigest, apiKeys)
    const restricted = tokenDigest !== undefined && digestMatchesAnySecret(tokenDigest, restrictedApiKeys)
    const permitted = bulk ? tokenDigest !== undefined && digestMatchesAnySecret(tokenDigest, bulkApiKeys) : known
    if (!known && !restricted && !permitted) {
      return { status: 401, body: { message: 'Invalid API key' } }
    }
    if (!permitted) {
      const permission = bulk ? 'users.track.bulk' : 'users.track'
      return { status: 403, body: { message: `Access Denied: this API key lacks the ${permission} permission` } }
    }

    const limit = (bulk ? bulkRequests : requests).take(token)
    const headers = rateHeaders(limit)
    if (!limit.allowed) {
      headers['x-ratelimit-retry-after'] = String(Math.max(1, Math.ceil(limit.retryAfterMs / 1000)))
      return { status: 429, headers, body: { message: 'API rate limit exceeded' } }
    }

    if (bulk && request.body.length > maxBulkBodyBytes) {
      return { status: 413, headers, body: { message: 'Request entity too large' } }
    }
    const parsed = parseJson(request.body)
    if (!parsed.ok || !isRecord(parsed.value))
      return { status: 400, headers, body: { message: 'Invalid JSON in request body' } }
    const payload = parsed.value
    const arrays: [InputArray, unknown[]][] = []
    for (const name of ['attributes', 'events', 'purchases'] as const) {
      const value = payload[name]
      if (value === undefined) continue
      if (!Array.isArray(value)) return { status: 400, headers, body: { message: `'${name}' must be an array` } }
      arrays.push([name, value])
    }
    const counts = arrays.map(([, items]) => items.length)
    const total = counts.reduce((sum, n) => sum + n, 0)
    if (total === 0) return { status: 400, headers, body: { message: noDataMessage } }
    const overLimit = bulk
      ? total > maxBulkObjects
      : objectLimitMode === 'combined'
        ? total > maxObjects
        : counts.some((n) => n > maxObjects)
    if (overLimit) return { status: 400, headers, body: { message: 'Max Input Length Exceeded' } }

    const record = request.record
    state.received(record, total)
    const errors: BrazeError[] = []
    const body: Record<string, unknown> = { message: 'success' }
    let processedTotal = 0
    // Braze processes attributes, then events, then purchases.
    for (const [name, items] of arrays) {
      const processed = processArray(state, record, name, items, errors)
      processedTotal += processed
      if (processed > 0) body[`${name}_processed`] = processed
    }
    if (processedTotal === 0) return { status: 400, headers, body: { message: noDataMessage, errors } }
    if (errors.length > 0) body.errors = errors
    return { status: successStatus, headers, body }
  }

  const admin = (request: AdminRequest): SimulatorResponse | undefined => {
    if (request.path !== '/profiles') return undefined
    switch (request.method) {
      case 'GET': {
        const externalId = request.query.get('external_id')
        const list = profiles.list().filter((p) => externalId === null || p.external_id === externalId)
        return { status: 200, body: { total: list.length, profiles: list } }
      }
      case 'POST':
        return { status: 200, body: { profiles: profiles.seed(parseSeeds(request.body)) } }
      case 'PUT':
        profiles.clear()
        return { status: 200, body: { profiles: profiles.seed(parseSeeds(request.body)) } }
      case 'DELETE':
        profiles.clear()
        return { status: 200, body: { total: 0 } }
      default:
        return undefined
    }
  }

  const simulator = await startSimulatorServer(options, (state) => ({
    name: 'braze',
    maxBodyBytes,
    tooLarge: () => ({ status: 413, body: { message: 'Request entity too large' } }),
    handle: (request) => handle(request, state),
    rateLimits: { requests, bulkRequests },
    rateLimitHeaders: (seconds) => ({ 'x-ratelimit-retry-after': String(seconds) }),
    admin,
    describe: () => ({
      profiles: profiles.size,
      limits: { maxObjects, objectLimitMode, maxBodyBytes, maxBulkObjects, maxBulkBodyBytes },
    }),
    reset: () => {
      profiles.clear()
      profiles.seed(seeds)
    },
  }))
  return { ...simulator, profiles }
}
