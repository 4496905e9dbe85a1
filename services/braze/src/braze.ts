import { ConfigError } from '@lookstream/config'
import {
  PermanentError,
  readNamedConnections,
  retryAfterMs,
  type BatchLimits,
  type BuiltRequest,
  type Classification,
  type Connection,
  type EncodedItem,
  type HttpDestination,
  type HttpResponse,
  type ItemOutcome,
} from '@lookstream/destination'
import { integrationOptions, type CanonicalMessage } from '@lookstream/events'
import { BRAZE_REST_HOSTS, BrazeConfig, BrazeConnectionConfig } from './config.ts'

export interface BrazeConnection extends Connection {
  /** `Bearer <REST API key>`; never logged. */
  authorization: string
  /** Attributes objects per request for this workspace. */
  maxObjects: number
  /** Values per array attribute for this workspace. */
  maxArrayLength: number
  /** Sends through `POST /users/track/bulk` (up to 1,000 objects, 2 MB) instead of `POST /users/track`. */
  bulk: boolean
}

/**
 * One attributes object of `POST /users/track` (or `/users/track/bulk`). It encodes (JSON.stringify) as the object
 * itself; `maxObjects` and `bulk` travel beside it so the request limits of its connection are its batch key.
 */
export interface BrazeItem {
  readonly attributes: Readonly<Record<string, unknown>>
  readonly maxObjects: number
  readonly bulk: boolean
  toJSON(): Readonly<Record<string, unknown>>
}

export const DEFAULT_EXPORT_LABEL = 'LOOKER_EXPORT'

const MB = 1024 * 1024
/** Braze caps every request at 4 MB (413 above); the margin covers the `{"attributes":[…]}` envelope. */
const MAX_REQUEST_BYTES = 4 * MB - 1024
/** `/users/track/bulk` takes 2 MB per request. */
const MAX_BULK_REQUEST_BYTES = 2 * MB - 1024
const MAX_OBJECTS = 75
const MAX_BULK_OBJECTS = 1000
const MAX_STRING_CHARS = 255
const MAX_REASON_CHARS = 300

/**
 * Keys of an attributes object that steer the update (identifiers, update mode, lookstream's export label)
 * rather than name an attribute: a `braze[...]` tag naming one of them is refused instead of overwriting it.
 */
const RESERVED_NAMES = new Set([
  'external_id',
  'braze_id',
  'user_alias',
  '_update_existing_only',
  '_merge_objects',
  'push_token_import',
  'looker_export',
])

/** Braze's standard profile fields that hold one value: an array there is refused. */
const SCALAR_PROFILE_FIELDS = new Set([
  'first_name',
  'last_name',
  'email',
  'phone',
  'country',
  'language',
  'home_city',
  'gender',
  'dob',
  'time_zone',
  'bio',
  'image_url',
  'email_subscribe',
  'push_subscribe',
  'date_of_first_session',
  'date_of_last_session',
  'marked_email_as_spam_at',
  'email_open_tracking_disabled',
  'email_click_tracking_disabled',
])

function tooLong(value: string): boolean {
  // Braze counts characters; a string of at most 255 UTF-16 units is never longer than that in code points.
  return value.length > MAX_STRING_CHARS && [...value].length > MAX_STRING_CHARS
}

function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/**
 * Why Braze cannot take this value for this attribute, or undefined. The reason names the attribute and the
 * kind of value, never the value itself (row data stays out of errors and headers).
 */
export function attributeValueProblem(name: string, value: unknown, maxArrayLength: number): string | undefined {
  if (typeof value === 'string') {
    return tooLong(value) ? `attribute "${name}" holds a string over ${MAX_STRING_CHARS} characters` : undefined
  }
  if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return undefined
  if (Array.isArray(value)) {
    if (SCALAR_PROFILE_FIELDS.has(name)) {
      return `attribute "${name}" is a single-value profile field and holds an array`
    }
    if (value.length > maxArrayLength) {
      return `attribute "${name}" holds an array of ${value.length} values, over the workspace's ${maxArrayLength} (Braze would truncate it)`
    }
    for (const element of value) {
      if (typeof element === 'string') {
        if (tooLong(element)) {
          return `attribute "${name}" holds an array with a string over ${MAX_STRING_CHARS} characters`
        }
      } else if (typeof element !== 'number' || !Number.isFinite(element)) {
        return `attribute "${name}" holds an array containing ${kindOf(element)} (Braze arrays hold strings and numbers)`
      }
    }
    return undefined
  }
  return `attribute "${name}" holds ${kindOf(value)} (Braze takes strings, numbers, booleans, dates and arrays of strings)`
}

/**
 * The last export label's `{"add": [label]}`: one object shared by the rows of a send, not one per row. Typed
 * read-only and never written; not frozen, because `JSON.stringify` of an item holding frozen objects leaves V8's
 * fast path (a third more time per item, measured in bench/README.md's braze section).
 */
let lastExportLabel: { label: string; operation: Readonly<{ add: readonly string[] }> } | undefined

function exportLabelOperation(label: string): Readonly<{ add: readonly string[] }> {
  if (lastExportLabel?.label !== label) lastExportLabel = { label, operation: { add: [label] } }
  return lastExportLabel.operation
}

/**
 * The attributes object for one canonical identify, as the Looker Action Hub's Braze action shaped it: the
 * identifier under the send's Unique Key, `_update_existing_only`, the export label added to `looker_export`,
 * then every trait (names as tagged, case kept).
 */
export function toBrazeAttributes(
  message: CanonicalMessage,
  maxArrayLength: number,
): Record<string, unknown> | PermanentError {
  if (message.type !== 'identify') {
    return new PermanentError(
      `Braze takes identify messages only (a ${message.type} has no attributes mapping)`,
      'LS_DEST_UNSUPPORTED_MESSAGE',
    )
  }
  const options = integrationOptions(message, 'braze') ?? { connection: 'default' }
  const identifierKey = options.identifierKey ?? 'external_id'
  if (message.userId === undefined) {
    return new PermanentError(
      `no userId: Braze needs the ${identifierKey} of the user (an anonymousId alone identifies nobody there)`,
      'LS_DEST_MISSING_IDENTITY',
    )
  }
  const sendNulls = options.nulls === 'send'
  const attributes: Record<string, unknown> = {
    [identifierKey]: message.userId,
    _update_existing_only: options.updateExistingOnly ?? true,
    looker_export: exportLabelOperation(options.exportLabel ?? DEFAULT_EXPORT_LABEL),
  }
  const traits = message.traits ?? {}
  let problems: string[] | undefined
  for (const name in traits) {
    if (!Object.hasOwn(traits, name)) continue
    const value = traits[name]
    if (RESERVED_NAMES.has(name)) {
      ;(problems ??= []).push(`attribute name "${name}" is reserved (identifier, update mode or export label)`)
      continue
    }
    if (name.startsWith('$') || name.length === 0 || tooLong(name)) {
      ;(problems ??= []).push(
        `attribute name "${name.slice(0, 64)}" is not valid at Braze (empty, over 255, or starting with $)`,
      )
      continue
    }
    if (value === null || value === undefined) {
      if (sendNulls) attributes[name] = null
      continue
    }
    const problem = attributeValueProblem(name, value, maxArrayLength)
    if (problem !== undefined) (problems ??= []).push(problem)
    else attributes[name] = value
  }
  if (problems !== undefined) {
    const shown = problems.slice(0, 5).join('; ')
    const more = problems.length > 5 ? `; and ${problems.length - 5} more` : ''
    return new PermanentError(`${shown}${more}`, 'LS_DEST_UNSUPPORTED_VALUE')
  }
  return attributes
}

/** An item serialises as its attributes object; the method lives on the prototype, not in a closure per row. */
class BrazeAttributesItem implements BrazeItem {
  readonly attributes: Record<string, unknown>
  readonly maxObjects: number
  readonly bulk: boolean
  constructor(attributes: Record<string, unknown>, maxObjects: number, bulk: boolean) {
    this.attributes = attributes
    this.maxObjects = maxObjects
    this.bulk = bulk
  }
  toJSON(): Record<string, unknown> {
    return this.attributes
  }
}

export function brazeItem(attributes: Record<string, unknown>, maxObjects: number, bulk = false): BrazeItem {
  return new BrazeAttributesItem(attributes, maxObjects, bulk)
}

/** What `toBrazeItem` reads of a connection: its workspace's limits and endpoint kind, never its key or URL. */
export type BrazeRowConnection = Pick<BrazeConnection, 'maxObjects' | 'maxArrayLength'> & { bulk?: boolean }

/** Pure: the item for one message on a connection with these limits (the service's toItem). */
export function toBrazeItem(message: CanonicalMessage, connection: BrazeRowConnection): BrazeItem | PermanentError {
  const attributes = toBrazeAttributes(message, connection.maxArrayLength)
  return attributes instanceof PermanentError
    ? attributes
    : brazeItem(attributes, connection.maxObjects, connection.bulk === true)
}

/** A connection's row limits as announced in the destination registry (`publicSettings`): not secrets. */
function brazePublicSettings(connection: BrazeConnection): Record<string, string> {
  return {
    maxObjectsPerRequest: String(connection.maxObjects),
    maxArrayLength: String(connection.maxArrayLength),
    bulk: String(connection.bulk),
  }
}

/** The default of a numeric setting of BrazeConfig, from its schema. */
function configDefault(schema: object): number {
  const value = (schema as { default?: unknown }).default
  if (typeof value !== 'number') throw new Error('BrazeConfig: a numeric setting without a default')
  return value
}

function announcedInteger(value: string | string[] | undefined, min: number, max: number): number | undefined {
  if (typeof value !== 'string' || !/^[0-9]{1,6}$/.test(value)) return undefined
  const number = Number(value)
  return number >= min && number <= max ? number : undefined
}

/**
 * Pure: the limits `toBrazeItem` needs for a connection, read back from the settings `publicSettings` announced
 * for it in the destination registry; a limit not announced (or not readable) is the configuration's default, and
 * `defaulted` names it. No credential is needed to check a row.
 */
export function brazeRowConnection(settings: Readonly<Record<string, string | string[]>> | undefined): {
  connection: BrazeRowConnection
  defaulted: string[]
} {
  const defaulted: string[] = []
  const read = (name: string, fallback: number, max: number): number => {
    const value = announcedInteger(settings?.[name], 1, max)
    if (value === undefined) defaulted.push(`${name} ${fallback}`)
    return value ?? fallback
  }
  // An announced bulk connection is one; anything else (older services announce nothing) is /users/track.
  const bulk = settings?.bulk === 'true'
  const objects = bulk
    ? read(
        'maxObjectsPerRequest',
        configDefault(BrazeConfig.properties.BRAZE_BULK_MAX_OBJECTS_PER_REQUEST),
        MAX_BULK_OBJECTS,
      )
    : read('maxObjectsPerRequest', configDefault(BrazeConfig.properties.BRAZE_MAX_OBJECTS_PER_REQUEST), MAX_OBJECTS)
  return {
    connection: {
      maxObjects: objects,
      maxArrayLength: read('maxArrayLength', configDefault(BrazeConfig.properties.BRAZE_MAX_ARRAY_LENGTH), 100),
      bulk,
    },
    defaulted,
  }
}

interface BrazeErrorEntry {
  type?: unknown
  input_array?: unknown
  index?: unknown
}

interface BrazeBody {
  message?: unknown
  errors?: unknown
}

function parseBody(body: string): BrazeBody | undefined {
  try {
    const parsed: unknown = JSON.parse(body)
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : undefined
  } catch {
    return undefined
  }
}

function clip(text: string): string {
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text
}

/**
 * Maps `errors[]` to positions in `items` through the request's layout; undefined when one of them cannot be
 * placed (then the runtime bisects the request to find the rejected items).
 */
function placeErrors(errors: unknown, request: BuiltRequest, count: number): Map<number, string> | undefined {
  if (!Array.isArray(errors)) return undefined
  const placed = new Map<number, string>()
  for (const entry of errors as BrazeErrorEntry[]) {
    if (entry === null || typeof entry !== 'object') return undefined
    const array = typeof entry.input_array === 'string' ? request.layout?.[entry.input_array] : undefined
    const index = entry.index
    if (array === undefined || typeof index !== 'number' || !Number.isInteger(index)) return undefined
    const position = array[index]
    if (position === undefined || position < 0 || position >= count) return undefined
    const type = typeof entry.type === 'string' ? entry.type : 'rejected without a reason'
    const previous = placed.get(position)
    placed.set(position, previous === undefined ? type : `${previous}; ${type}`)
  }
  return placed
}

/**
 * The outcome of every item of a `/users/track` request (same order as `items`), or a request to bisect.
 * `errors[]` names items by `input_array` and `index`: exactly those are permanent, with Braze's reason.
 */
export function classifyBrazeResponse(
  response: HttpResponse,
  items: readonly unknown[],
  request: BuiltRequest,
): Classification {
  const { status } = response
  const body = parseBody(response.body)
  const detail = clip(typeof body?.message === 'string' ? body.message : response.body.slice(0, MAX_REASON_CHARS))
  const reason = `HTTP ${status}${detail ? `: ${detail}` : ''}`
  const all = (outcome: ItemOutcome): Classification => ({ kind: 'items', outcomes: items.map(() => outcome) })

  const withErrors = (rest: ItemOutcome): Classification | undefined => {
    if (body?.errors === undefined) return undefined
    const placed = placeErrors(body.errors, request, items.length)
    if (placed === undefined) return { kind: 'split', reason: `${reason} (errors[] not matched to the request)` }
    return {
      kind: 'items',
      outcomes: items.map((_, index) => {
        const type = placed.get(index)
        return type === undefined
          ? rest
          : { kind: 'permanent', reason: clip(`Braze rejected it: ${type}`), status, code: 'LS_DEST_REJECTED' }
      }),
    }
  }

  if (status >= 200 && status < 300) {
    // 201/200 success, possibly with errors[] for some items; 202 `queued` (maintenance) is success too.
    return withErrors({ kind: 'delivered' }) ?? all({ kind: 'delivered' })
  }
  if (status === 400) {
    // Fatal: nothing in the request was processed. The named items are bad; the others are sent again.
    const named = withErrors({
      kind: 'retryable',
      reason: `${reason} (not processed: other items of the request were rejected)`,
      status,
      code: 'LS_DEST_RETRYABLE',
    })
    // No errors[] (too many objects, unreadable body): bisect down to the item Braze refuses.
    return named ?? { kind: 'split', reason }
  }
  if (status === 413) return { kind: 'split', reason }
  if (status === 401 || status === 403 || status === 404) {
    // A wrong, unknown or under-privileged key (Braze answers 404 for an unknown key): pause, never dead-letter.
    return all({ kind: 'auth', reason, status, code: 'LS_DEST_AUTH' })
  }
  if (status === 429) {
    return all({
      kind: 'retryable',
      reason,
      status,
      code: 'LS_DEST_RATE_LIMITED',
      retryAfterMs: retryAfterMs(response.headers),
    })
  }
  if (status === 408 || status >= 500) {
    return all({
      kind: 'retryable',
      reason,
      status,
      code: 'LS_DEST_RETRYABLE',
      retryAfterMs: retryAfterMs(response.headers),
    })
  }
  return all({ kind: 'permanent', reason, status, code: 'LS_DEST_REJECTED' })
}

const baseLimits: BatchLimits = {
  maxBatchItems: MAX_OBJECTS,
  maxBatchBytes: MAX_REQUEST_BYTES,
  maxItemBytes: MAX_REQUEST_BYTES,
  lingerMs: 20,
}

function baseUrl(endpoint: string): string {
  return endpoint.replace(/\/+$/, '')
}

export const braze: HttpDestination<typeof BrazeConfig, BrazeConnection, BrazeItem> = {
  kind: 'http',
  // Profile attributes are state: a user's later update must never land before an earlier one.
  orderedPerUser: true,
  name: 'braze',
  integrationKey: 'Braze',
  config: BrazeConfig,
  limits: baseLimits,
  // 75 objects per request: with the runtime's default of 4 in flight the service waits on round trips
  // (bench/README.md, destinations pipeline).
  inFlightRequests: 16,

  connections(config) {
    const connections = new Map<string, BrazeConnection>()
    // Connections with the same key on the same endpoint are one workspace: one budget, named after the first.
    const scopeOfKey = new Map<string, string>()
    const windowSeconds = config.BRAZE_RATE_LIMIT_WINDOW_SECONDS
    const add = (name: string, connection: BrazeConnectionConfig, workspace: string | undefined) => {
      const endpoint = baseUrl(connection.restEndpoint)
      const url = new URL(endpoint)
      if (url.protocol !== 'https:' && (BRAZE_REST_HOSTS as readonly string[]).includes(url.hostname.toLowerCase())) {
        // The key travels in a header: never in clear text to Braze itself.
        throw new ConfigError([
          {
            key: name === 'default' ? 'BRAZE_REST_ENDPOINT' : `BRAZE_CONNECTIONS (connection "${name}")`,
            expected: 'an https:// URL for a Braze instance host',
            given: `${url.protocol}//${url.host}`,
          },
        ])
      }
      const keyScope = `${endpoint}\u0000${connection.apiKey}`
      if (!scopeOfKey.has(keyScope)) scopeOfKey.set(keyScope, `connection:${name}`)
      const bulk = connection.bulk === true
      const maxObjects =
        connection.maxObjectsPerRequest ??
        (bulk ? config.BRAZE_BULK_MAX_OBJECTS_PER_REQUEST : config.BRAZE_MAX_OBJECTS_PER_REQUEST)
      if (!bulk && maxObjects > MAX_OBJECTS) {
        throw new ConfigError([
          {
            key: `BRAZE_CONNECTIONS (connection "${name}") maxObjectsPerRequest`,
            expected: `at most ${MAX_OBJECTS} (/users/track); up to ${MAX_BULK_OBJECTS} only with "bulk": true`,
            given: String(maxObjects),
          },
        ])
      }
      const scope = workspace === undefined ? scopeOfKey.get(keyScope)! : `workspace:${workspace}`
      connections.set(name, {
        name,
        endpoint,
        // /users/track/bulk has a budget of its own beside /users/track's.
        rateLimitRps: bulk
          ? (connection.bulkRequestsPerSecond ?? config.BRAZE_BULK_REQUESTS_PER_SECOND)
          : (connection.rateLimitRequests ?? config.BRAZE_RATE_LIMIT_REQUESTS) / windowSeconds,
        rateLimitScope: bulk ? `${scope}:bulk` : scope,
        authorization: `Bearer ${connection.apiKey}`,
        maxObjects,
        maxArrayLength: connection.maxArrayLength ?? config.BRAZE_MAX_ARRAY_LENGTH,
        bulk,
      })
    }
    if (config.BRAZE_API_KEY !== undefined || config.BRAZE_REST_ENDPOINT !== undefined) {
      if (config.BRAZE_API_KEY === undefined || config.BRAZE_REST_ENDPOINT === undefined) {
        const missing = config.BRAZE_API_KEY === undefined ? 'BRAZE_API_KEY' : 'BRAZE_REST_ENDPOINT'
        const given = missing === 'BRAZE_API_KEY' ? 'BRAZE_REST_ENDPOINT' : 'BRAZE_API_KEY'
        throw new ConfigError([
          { key: missing, expected: `a value: the default connection needs both (${given} is set)`, given: 'nothing' },
        ])
      }
      add(
        'default',
        { apiKey: config.BRAZE_API_KEY, restEndpoint: config.BRAZE_REST_ENDPOINT, bulk: config.BRAZE_BULK },
        config.BRAZE_WORKSPACE,
      )
    }
    for (const [name, connection] of readNamedConnections('BRAZE', BrazeConnectionConfig, config)) {
      add(name, connection, connection.workspace)
    }
    return connections
  },

  allowedHosts(config) {
    const extra = (config.BRAZE_ALLOWED_HOSTS ?? '')
      .split(',')
      .map((host) => host.trim().toLowerCase())
      .filter((host) => host.length > 0)
    return [...BRAZE_REST_HOSTS, ...extra]
  },

  // The ingress's dry run checks rows with toBrazeItem on these (docs/adr/0020-dry-run-with-the-services-row-checks.md).
  publicSettings: brazePublicSettings,

  toItem: toBrazeItem,

  // The attributes object itself: serialising the item would call its toJSON for every row.
  encode: (item) => JSON.stringify(item.attributes),

  // Every option of a send lives inside its attributes objects, so any two objects of a connection may share a
  // request; the key only carries the connection's request limits (objects per request, and bulk's 2 MB) to
  // `limitsFor`.
  batchKey: (item) => (item.bulk ? `bulk:${item.maxObjects}` : String(item.maxObjects)),

  limitsFor(batchKey) {
    const bulk = batchKey.startsWith('bulk:')
    const maxObjects = Number(bulk ? batchKey.slice(5) : batchKey)
    if (!Number.isInteger(maxObjects) || maxObjects < 1) return baseLimits
    if (!bulk) return maxObjects <= MAX_OBJECTS ? { ...baseLimits, maxBatchItems: maxObjects } : baseLimits
    return {
      ...baseLimits,
      maxBatchItems: Math.min(maxObjects, MAX_BULK_OBJECTS),
      maxBatchBytes: MAX_BULK_REQUEST_BYTES,
      maxItemBytes: MAX_BULK_REQUEST_BYTES,
    }
  },

  buildRequest(items: readonly EncodedItem<BrazeItem>[], connection): BuiltRequest {
    return {
      url: `${connection.endpoint}${connection.bulk ? '/users/track/bulk' : '/users/track'}`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: connection.authorization },
      body: `{"attributes":[${items.map((item) => item.json).join(',')}]}`,
      layout: { attributes: items.map((_, index) => index) },
    }
  },

  classify: (response, items, request) => classifyBrazeResponse(response, items, request),
}
