import { isRecord, parseJson } from './json-body.ts'
import {
  type AdminRequest,
  type CommonSimulatorOptions,
  type Simulator,
  type SimulatorRequest,
  type SimulatorResponse,
  startSimulatorServer,
} from './simulator-server.ts'
import { type SimulatorState } from './simulator-state.ts'
import { type WindowLimit, WindowRateLimiter } from './window-rate-limiter.ts'

export interface HeapRateLimits {
  /** Single track / add_user_properties calls per identity per app_id: 30 per 30 s. */
  identityRequests?: WindowLimit | null
  /** Bulk-track events, and bulk user / account updates, per identity (or account) per app_id: 1,000 per minute. */
  identityEvents?: WindowLimit | null
  /** Tracked events plus user and account updates per app_id (one shared budget): 15,000 per minute. */
  appEvents?: WindowLimit | null
}

export interface HeapSimulatorOptions extends CommonSimulatorOptions {
  /** Environment ids (app_id) that exist. */
  appIds?: string[]
  /** Events, users or accounts per bulk request: 1,000. */
  maxBulkItems?: number
  maxBodyBytes?: number
  rateLimits?: HeapRateLimits
}

export interface HeapSimulator extends Simulator {
  /** Current user and account properties (last value wins), per app_id. */
  users: Map<string, Record<string, unknown>>
  accounts: Map<string, Record<string, unknown>>
  /** How many accepted updates each user or account received: `user:<app_id>:<identity>`, `account:<app_id>:<id>`. */
  updateCounts: Map<string, number>
}

export const heapDefaults = {
  appIds: ['1234567890'],
  maxBulkItems: 1000,
  // Heap documents no body limit; this only keeps the simulator bounded (1,000 items of a few KB each fit).
  maxBodyBytes: 16 * 1024 * 1024,
  rateLimits: {
    identityRequests: { limit: 30, windowMs: 30_000 },
    identityEvents: { limit: 1000, windowMs: 60_000 },
    appEvents: { limit: 15_000, windowMs: 60_000 },
  },
} as const

const maxIdentityLength = 255
const maxEventLength = 1024
const maxValueLength = 1024

class HeapValidationError extends Error {}

function fail(message: string): never {
  throw new HeapValidationError(message)
}

function checkProperties(properties: unknown, where: string, forbidId: boolean): Record<string, unknown> {
  if (properties === undefined) return {}
  if (!isRecord(properties)) fail(`${where}: properties must be an object`)
  const normalized: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(properties)) {
    if (forbidId && key.toLowerCase() === 'id') fail(`${where}: property name "${key}" is reserved`)
    if (value === null || value === undefined) continue
    if (typeof value === 'number' || typeof value === 'boolean') normalized[key] = value
    else if (typeof value === 'string') {
      if (value.length >= maxValueLength)
        fail(`${where}: property "${key}" must be shorter than ${maxValueLength} characters`)
      normalized[key] = value
    } else if (Array.isArray(value)) {
      // Heap joins arrays with "||" and truncates the result rather than rejecting it.
      normalized[key] = value
        .map(String)
        .join('||')
        .slice(0, maxValueLength - 1)
    } else fail(`${where}: property "${key}" must be a string or number (nested objects are not supported)`)
  }
  return normalized
}

function checkIdentity(item: Record<string, unknown>, where: string): string {
  const { identity, user_id: userId } = item
  if (identity !== undefined && userId !== undefined) fail(`${where}: identity and user_id are mutually exclusive`)
  if (identity !== undefined) {
    if (typeof identity !== 'string' && typeof identity !== 'number') fail(`${where}: identity must be a string`)
    const value = String(identity)
    if (value === '' || value.length > maxIdentityLength)
      fail(`${where}: identity must have 1 to ${maxIdentityLength} characters`)
    return value
  }
  if (userId !== undefined) {
    const value = typeof userId === 'string' || typeof userId === 'number' ? String(userId) : ''
    if (!/^\d+$/.test(value) || Number(value) >= 2 ** 53) fail(`${where}: user_id must be a numeric string below 2^53`)
    return `user_id:${value}`
  }
  return fail(`${where}: identity or user_id is required`)
}

interface TrackEvent {
  identity: string
  idempotencyKey: string | undefined
  item: Record<string, unknown>
}

function checkEvent(raw: unknown, where: string): TrackEvent {
  if (!isRecord(raw)) fail(`${where}: must be an object`)
  const identity = checkIdentity(raw, where)
  if (typeof raw.event !== 'string' || raw.event === '' || raw.event.length > maxEventLength) {
    fail(`${where}: event must have 1 to ${maxEventLength} characters`)
  }
  if (raw.timestamp !== undefined && (typeof raw.timestamp !== 'string' || Number.isNaN(Date.parse(raw.timestamp)))) {
    fail(`${where}: timestamp must be ISO 8601`)
  }
  const key = raw.idempotency_key
  if (key !== undefined && (typeof key !== 'string' || key === '')) fail(`${where}: idempotency_key must be a string`)
  const properties = checkProperties(raw.properties, where, false)
  return { identity, idempotencyKey: key, item: { ...raw, properties } }
}

function itemsOf(
  payload: Record<string, unknown>,
  bulkKey: string,
  maxBulkItems: number,
): { items: unknown[]; bulk: boolean } {
  const bulk = payload[bulkKey]
  if (bulk === undefined) return { items: [payload], bulk: false }
  if (!Array.isArray(bulk)) fail(`${bulkKey} must be an array`)
  if (bulk.length === 0) fail(`${bulkKey} must not be empty`)
  if (bulk.length > maxBulkItems) fail(`${bulkKey} holds ${bulk.length} items; at most ${maxBulkItems} are allowed`)
  return { items: bulk, bulk: true }
}

export async function startHeapSimulator(options: HeapSimulatorOptions = {}): Promise<HeapSimulator> {
  const appIds = new Set(options.appIds ?? heapDefaults.appIds)
  const maxBulkItems = options.maxBulkItems ?? heapDefaults.maxBulkItems
  const maxBodyBytes = options.maxBodyBytes ?? heapDefaults.maxBodyBytes
  const limitOf = (name: keyof HeapRateLimits): WindowLimit | null => {
    const configured = options.rateLimits?.[name]
    return configured === undefined ? { ...heapDefaults.rateLimits[name] } : configured
  }
  const rateLimits = {
    identityRequests: new WindowRateLimiter(limitOf('identityRequests')),
    identityEvents: new WindowRateLimiter(limitOf('identityEvents')),
    appEvents: new WindowRateLimiter(limitOf('appEvents')),
  }
  const users = new Map<string, Record<string, unknown>>()
  const accounts = new Map<string, Record<string, unknown>>()
  const updateCounts = new Map<string, number>()
  const tooMany: SimulatorResponse = { status: 429, body: { error: 'Too Many Requests' } }

  const track = (
    state: SimulatorState,
    request: SimulatorRequest,
    appId: string,
    payload: Record<string, unknown>,
  ): SimulatorResponse => {
    const { items, bulk } = itemsOf(payload, 'events', maxBulkItems)
    const events = items.map((item, index) => checkEvent(item, bulk ? `events[${index}]` : 'event'))
    const now = Date.now()
    if (bulk) {
      const perIdentity = new Map<string, number>()
      for (const event of events) perIdentity.set(event.identity, (perIdentity.get(event.identity) ?? 0) + 1)
      // All-or-nothing: check every bucket before taking from any of them.
      if (!rateLimits.appEvents.fits(appId, events.length, now).allowed) return tooMany
      for (const [identity, n] of perIdentity) {
        if (!rateLimits.identityEvents.fits(`${appId}:${identity}`, n, now).allowed) return tooMany
      }
      rateLimits.appEvents.take(appId, events.length, now)
      for (const [identity, n] of perIdentity) rateLimits.identityEvents.take(`${appId}:${identity}`, n, now)
    } else {
      const identity = (events[0] as TrackEvent).identity
      if (!rateLimits.identityRequests.fits(`${appId}:${identity}`, 1, now).allowed) return tooMany
      if (!rateLimits.appEvents.fits(appId, 1, now).allowed) return tooMany
      rateLimits.identityRequests.take(`${appId}:${identity}`, 1, now)
      rateLimits.appEvents.take(appId, 1, now)
    }
    const record = request.record
    state.received(record, events.length)
    for (const event of events) {
      if (event.idempotencyKey !== undefined) {
        // The key is hashed into Heap's event-id space per environment: a repeat never changes data.
        const id = `${appId}:${event.idempotencyKey}`
        const first = state.acceptedIds.get(id)
        if (first !== undefined) {
          state.duplicate(record, 'track', id, first, event.item)
          continue
        }
        state.accept(record, 'track', id, event.item)
      } else {
        state.accept(record, 'track', undefined, event.item)
      }
    }
    return { status: 200, body: {} }
  }

  const addProperties = (
    state: SimulatorState,
    request: SimulatorRequest,
    appId: string,
    payload: Record<string, unknown>,
    kind: 'user' | 'account',
  ): SimulatorResponse => {
    const { items, bulk } = itemsOf(payload, kind === 'user' ? 'users' : 'accounts', maxBulkItems)
    const updates = items.map((raw, index) => {
      const where = bulk ? `${kind}s[${index}]` : kind
      if (!isRecord(raw)) fail(`${where}: must be an object`)
      let key: string
      if (kind === 'user') key = checkIdentity(raw, where)
      else {
        const accountId = raw.account_id
        if ((typeof accountId !== 'string' && typeof accountId !== 'number') || String(accountId) === '') {
          fail(`${where}: account_id is required`)
        }
        key = String(accountId)
      }
      if (raw.properties === undefined) fail(`${where}: properties are required`)
      return { key, raw, properties: checkProperties(raw.properties, where, kind === 'user') }
    })
    const now = Date.now()
    if (bulk) {
      // Bulk updates count like bulk events: items per app and per identity (or account), all-or-nothing.
      const perKey = new Map<string, number>()
      for (const update of updates) {
        const key = kind === 'user' ? `${appId}:${update.key}` : `${appId}:account:${update.key}`
        perKey.set(key, (perKey.get(key) ?? 0) + 1)
      }
      if (!rateLimits.appEvents.fits(appId, updates.length, now).allowed) return tooMany
      for (const [key, n] of perKey) if (!rateLimits.identityEvents.fits(key, n, now).allowed) return tooMany
      rateLimits.appEvents.take(appId, updates.length, now)
      for (const [key, n] of perKey) rateLimits.identityEvents.take(key, n, now)
    } else {
      const first = (updates[0] as { key: string }).key
      const key = kind === 'user' ? `${appId}:${first}` : `${appId}:account:${first}`
      if (kind === 'user' && !rateLimits.identityRequests.fits(key, 1, now).allowed) return tooMany
      if (!rateLimits.appEvents.fits(appId, 1, now).allowed) return tooMany
      if (kind === 'user') rateLimits.identityRequests.take(key, 1, now)
      rateLimits.appEvents.take(appId, 1, now)
    }
    const record = request.record
    state.received(record, updates.length)
    const store = kind === 'user' ? users : accounts
    for (const update of updates) {
      const storeKey = `${appId}:${update.key}`
      store.set(storeKey, { ...store.get(storeKey), ...update.properties })
      const countKey = `${kind}:${storeKey}`
      updateCounts.set(countKey, (updateCounts.get(countKey) ?? 0) + 1)
      state.accept(record, `${kind}_properties`, undefined, update.raw)
    }
    return { status: 200, body: {} }
  }

  const handle = (request: SimulatorRequest, state: SimulatorState): SimulatorResponse => {
    const route = request.method === 'POST' ? request.path : ''
    if (route !== '/api/track' && route !== '/api/add_user_properties' && route !== '/api/add_account_properties') {
      return { status: 404, body: { error: 'Not Found' } }
    }
    const parsed = parseJson(request.body)
    if (!parsed.ok || !isRecord(parsed.value)) return { status: 400, body: { error: 'Invalid JSON' } }
    const payload = parsed.value
    const appId = typeof payload.app_id === 'string' || typeof payload.app_id === 'number' ? String(payload.app_id) : ''
    if (appId === '') return { status: 400, body: { error: 'app_id is required' } }
    if (!appIds.has(appId)) return { status: 400, body: { error: `unknown app_id ${appId}` } }
    try {
      if (route === '/api/track') return track(state, request, appId, payload)
      return addProperties(state, request, appId, payload, route === '/api/add_user_properties' ? 'user' : 'account')
    } catch (err) {
      if (!(err instanceof HeapValidationError)) throw err
      state.reject(request.record, route.slice('/api/'.length), err.message, { item: payload })
      return { status: 400, body: { error: err.message } }
    }
  }

  const admin = (request: AdminRequest): SimulatorResponse | undefined => {
    if (request.method !== 'GET') return undefined
    if (request.path === '/users') return { status: 200, body: { total: users.size, users: Object.fromEntries(users) } }
    if (request.path === '/accounts')
      return { status: 200, body: { total: accounts.size, accounts: Object.fromEntries(accounts) } }
    return undefined
  }

  const simulator = await startSimulatorServer(options, (state) => ({
    name: 'heap',
    maxBodyBytes,
    tooLarge: () => ({ status: 413, body: { error: 'Payload Too Large' } }),
    handle: (request) => handle(request, state),
    rateLimits,
    admin,
    describe: () => ({ users: users.size, accounts: accounts.size, limits: { maxBulkItems, maxBodyBytes } }),
    reset: () => {
      users.clear()
      accounts.clear()
      updateCounts.clear()
    },
  }))
  return { ...simulator, users, accounts, updateCounts }
}
