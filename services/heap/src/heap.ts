import { type CanonicalMessage } from '@lookstream/events'
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import {
  PermanentError,
  readNamedConnections,
  retryAfterMs,
  type Classification,
  type Connection,
  type EncodedItem,
  type HttpDestination,
  type HttpResponse,
  type ItemOutcome,
} from '@lookstream/destination'
import { EnvironmentId, HEAP_API_HOSTS, HEAP_REGION_URLS, HeapConfig, HeapConnectionConfig } from './config.ts'
import { toHeapProperties, type HeapProperties, type LongValues } from './properties.ts'

export interface HeapConnection extends Connection {
  /** The environment (app_id) a send goes to when it names none. */
  appId: string
  /** Every environment a send on this connection may name (appId included). */
  appIds: ReadonlySet<string>
  /** Items per request: at most Heap's 1,000, fewer when the budget is small (see `requestItemsFor`). */
  maxBatchItems: number
}

export type HeapEndpoint = 'user' | 'account'

/** Where an item goes; kept under a symbol so that JSON.stringify (the runtime's encoding) leaves it out. */
export const TARGET = Symbol('heap target')

export interface HeapTarget {
  endpoint: HeapEndpoint
  appId: string
}

/** One element of `users[]` (add_user_properties) or `accounts[]` (add_account_properties). */
export type HeapItem =
  | { identity: string; properties: HeapProperties; [TARGET]: HeapTarget }
  | { account_id: string; properties: HeapProperties; [TARGET]: HeapTarget }

const KB = 1024
/** Heap documents 1,000 users or accounts per bulk request. */
export const MAX_BULK_ITEMS = 1000
const MAX_IDENTITY_CHARS = 255
/**
 * The service paces at this share of the configured budgets: a request reaches Heap a few milliseconds after it
 * was granted, by a varying amount, and a budget used to the last item would let that jitter push one window
 * over Heap's limit.
 */
export const RATE_HEADROOM = 0.98

/**
 * Items per request for a budget of `itemsPerMinute`. A request's items reach Heap at once, so whatever window
 * Heap counts a minute in, it can hold a minute of paced items plus the whole of the request that opens or closes
 * it, plus the request's worth the schedule may run ahead to make up for a late grant (`itemBurst`): pacing at
 * 98 % keeps that under the budget while a request is at most a third of the 2 % left over (the last third absorbs
 * network jitter). At 15,000 items/min that is 100 per request (150 requests a minute); with budgets of
 * 150,000/min and more, Heap's own 1,000.
 */
export function requestItemsFor(itemsPerMinute: number): number {
  return Math.max(1, Math.min(MAX_BULK_ITEMS, Math.floor((itemsPerMinute * (1 - RATE_HEADROOM)) / 3)))
}

const PATHS: Record<HeapEndpoint, string> = {
  user: '/api/add_user_properties',
  account: '/api/add_account_properties',
}
const ARRAYS: Record<HeapEndpoint, string> = { user: 'users', account: 'accounts' }

interface HeapMessageOptions {
  propertyType?: string
  envId?: string
  longValues?: LongValues
}

function optionsOf(message: CanonicalMessage): HeapMessageOptions {
  const setting = message.integrations.Heap
  return typeof setting === 'object' ? setting : {}
}

/** What `toHeapItem` reads of a connection: its name and environments (no credential: Heap's API takes none). */
export type HeapRowConnection = Pick<HeapConnection, 'name' | 'appId' | 'appIds'>

/** A connection's environments as announced in the destination registry (`publicSettings`). */
function heapPublicSettings(connection: HeapConnection): Record<string, string | string[]> {
  return { environment: connection.appId, environments: [...connection.appIds] }
}

const EnvironmentIds = Type.Array(EnvironmentId)

/**
 * Pure: the connection `toHeapItem` needs, read back from the settings `publicSettings` announced for it in the
 * destination registry; undefined when they are missing or unreadable (an environment cannot be guessed).
 */
export function heapRowConnection(
  name: string,
  settings: Readonly<Record<string, string | readonly string[]>> | undefined,
): HeapRowConnection | undefined {
  const appId = settings?.environment
  const appIds = settings?.environments
  if (!Value.Check(EnvironmentId, appId) || !Value.Check(EnvironmentIds, appIds)) return undefined
  return { name, appId, appIds: new Set([appId, ...(appIds as readonly string[])]) }
}

/** Pure: the item for one message on `connection`, or why Heap can never take it. */
export function toHeapItem(message: CanonicalMessage, connection: HeapRowConnection): HeapItem | PermanentError {
  if (message.type === 'track') {
    return new PermanentError(
      'Heap takes user and account properties from lookstream: track messages are not sent to it',
      'LS_DEST_UNSUPPORTED_MESSAGE',
    )
  }
  const options = optionsOf(message)
  const endpoint: HeapEndpoint = message.type === 'identify' ? 'user' : 'account'
  if (options.propertyType !== undefined && options.propertyType !== endpoint) {
    return new PermanentError(
      `property type ${JSON.stringify(options.propertyType)} does not fit a ${message.type} message (identify: user, group: account)`,
      'LS_DEST_UNSUPPORTED_MESSAGE',
    )
  }
  const appId = options.envId ?? connection.appId
  if (!connection.appIds.has(appId)) {
    return new PermanentError(
      `Heap environment ${appId} is not allowed on connection "${connection.name}" (allowed: ${[...connection.appIds].join(', ')})`,
      'LS_DEST_UNSUPPORTED_VALUE',
    )
  }
  const result = toHeapProperties(message.traits, { kind: endpoint, longValues: options.longValues ?? 'reject' })
  if (!result.ok) return new PermanentError(result.reason, 'LS_DEST_UNSUPPORTED_VALUE')
  const target: HeapTarget = { endpoint, appId }
  if (message.type === 'identify') {
    const identity = message.userId
    if (identity === undefined || identity === '') {
      return new PermanentError(
        'Heap user properties need the identity in userId; this message has none',
        'LS_DEST_MISSING_IDENTITY',
      )
    }
    if (identity.length > MAX_IDENTITY_CHARS) {
      return new PermanentError(
        `the identity is ${identity.length} characters; Heap takes at most ${MAX_IDENTITY_CHARS}`,
        'LS_DEST_UNSUPPORTED_VALUE',
      )
    }
    return { identity, properties: result.properties, [TARGET]: target }
  }
  return { account_id: message.groupId, properties: result.properties, [TARGET]: target }
}

function keyOf(item: HeapItem): string {
  return 'identity' in item ? item.identity : item.account_id
}

/**
 * Pure: the bulk request for items of one endpoint and environment. An identity named twice goes out once,
 * with its properties merged in order (Heap applies them in order and the last value wins, so the result is
 * the same): a request then counts at most one update per identity, which is how the per-identity limit is kept
 * (see the README).
 */
export function buildHeapBody(items: readonly EncodedItem<HeapItem>[]): string {
  const target = items[0]!.item[TARGET]
  const parts: string[] = []
  const positions = new Map<string, number>()
  let merged: Map<number, { key: string; properties: HeapProperties }> | undefined
  for (const { item, json } of items) {
    const key = keyOf(item)
    const position = positions.get(key)
    if (position === undefined) {
      positions.set(key, parts.length)
      parts.push(json)
      continue
    }
    merged ??= new Map()
    let entry = merged.get(position)
    if (entry === undefined) {
      const first = JSON.parse(parts[position]!) as { properties: HeapProperties }
      entry = { key, properties: first.properties }
      merged.set(position, entry)
    }
    Object.assign(entry.properties, item.properties)
  }
  if (merged !== undefined) {
    const name = target.endpoint === 'user' ? 'identity' : 'account_id'
    for (const [position, entry] of merged) {
      parts[position] = JSON.stringify({ [name]: entry.key, properties: entry.properties })
    }
  }
  return `{"app_id":${JSON.stringify(target.appId)},"${ARRAYS[target.endpoint]}":[${parts.join(',')}]}`
}

/**
 * Heap's error text with the items' own values blanked out: the reason lands in DLQ headers and logs, where no
 * row value may go, and Heap documents no error format that would promise it never echoes one.
 */
export function redactReason(text: string, items: readonly EncodedItem<HeapItem>[]): string {
  const values = new Set<string>()
  for (const { item } of items) {
    values.add(keyOf(item))
    for (const value of Object.values(item.properties)) values.add(String(value))
  }
  let out = text
  // Longest first, so a value containing a shorter one is blanked whole.
  for (const value of [...values].sort((a, b) => b.length - a.length)) {
    if (value.length >= 3) out = out.split(value).join('‹value›')
  }
  return out
}

export function classifyHeapResponse(response: HttpResponse, items: readonly EncodedItem<HeapItem>[]): Classification {
  const { status } = response
  const outcomesOf = (outcome: ItemOutcome): Classification => ({
    kind: 'items',
    outcomes: items.map(() => outcome),
  })
  if (status >= 200 && status < 300) return outcomesOf({ kind: 'delivered' })
  // A bisected batch ends with one item, the only case the runtime shows the reason for: only then is it worth
  // reading and redacting Heap's answer.
  const detail = items.length === 1 ? redactReason(response.body.slice(0, 300), items) : ''
  const reason = `HTTP ${status}${detail ? `: ${detail}` : ''}`
  // Heap answers 400 for the whole request without saying which item is wrong: bisect to find the bad ones.
  if (status === 400 || status === 413) return { kind: 'split', reason }
  if (status === 401 || status === 403) return outcomesOf({ kind: 'auth', reason, status })
  if (status === 408 || status === 429 || status >= 500) {
    return outcomesOf({
      kind: 'retryable',
      reason,
      status,
      code: status === 429 ? 'LS_DEST_RATE_LIMITED' : 'LS_DEST_RETRYABLE',
      retryAfterMs: retryAfterMs(response.headers),
    })
  }
  return outcomesOf({ kind: 'permanent', reason, status, code: 'LS_DEST_REJECTED' })
}

function hostOf(url: string): string {
  return new URL(url).host.toLowerCase()
}

export const heap: HttpDestination<typeof HeapConfig, HeapConnection, HeapItem> = {
  kind: 'http',
  // User and account properties are state: a later update must never land before an earlier one.
  orderedPerUser: true,
  name: 'heap',
  integrationKey: 'Heap',
  config: HeapConfig,
  // Heap documents 1,000 items per bulk request and no body limit; 4 MB keeps requests reasonable (a thousand
  // rows of a few dozen short properties are ~1 MB), 1 MB fits a row of ~1,000 properties of 1,023 characters.
  limits: { maxBatchItems: MAX_BULK_ITEMS, maxBatchBytes: 4096 * KB, maxItemBytes: 1024 * KB, lingerMs: 50 },

  connections(config) {
    const connections = new Map<string, HeapConnection>()
    const add = (name: string, settings: HeapConnectionConfig, apiUrl: string) => {
      const itemsPerMinute = settings.itemsPerMinute ?? config.HEAP_ITEMS_PER_MINUTE
      const identityItemsPerMinute = settings.identityItemsPerMinute ?? config.HEAP_IDENTITY_ITEMS_PER_MINUTE
      connections.set(name, {
        name,
        endpoint: apiUrl.replace(/\/+$/, ''),
        appId: settings.appId,
        appIds: new Set([settings.appId, ...(settings.allowedAppIds ?? [])]),
        maxBatchItems: requestItemsFor(itemsPerMinute),
        // One request's worth of catch-up (see requestItemsFor).
        itemBurst: requestItemsFor(itemsPerMinute) + 1,
        // Each request carries an identity at most once (buildHeapBody), so requests per minute bound the updates
        // per minute of any one identity.
        rateLimitRps: (identityItemsPerMinute / 60) * RATE_HEADROOM,
        itemRatePerSecond: (itemsPerMinute / 60) * RATE_HEADROOM,
        // Heap's budgets are per environment: connections with the same one share them.
        rateLimitScope: `app-${settings.appId}`,
      })
    }
    if (config.HEAP_APP_ID !== undefined) {
      const allowed = config.HEAP_ALLOWED_APP_IDS?.split(',')
      add('default', { appId: config.HEAP_APP_ID, ...(allowed ? { allowedAppIds: allowed } : {}) }, config.HEAP_API_URL)
    }
    for (const [name, settings] of readNamedConnections('HEAP', HeapConnectionConfig, config)) {
      add(
        name,
        settings,
        settings.apiUrl ?? (settings.region ? HEAP_REGION_URLS[settings.region] : config.HEAP_API_URL),
      )
    }
    return connections
  },

  allowedHosts(config) {
    if (config.HEAP_ALLOWED_HOSTS !== undefined) {
      return config.HEAP_ALLOWED_HOSTS.split(',')
        .map((host) => host.trim().toLowerCase())
        .filter((host) => host.length > 0)
    }
    return [...HEAP_API_HOSTS, hostOf(config.HEAP_API_URL)]
  },

  // The ingress refuses a send naming an environment the connection does not allow before producing a row.
  // The ingress's dry run checks rows with toHeapItem on them too (docs/adr/0020-dry-run-with-the-services-row-checks.md).
  publicSettings: heapPublicSettings,

  toItem: toHeapItem,

  batchKey(item) {
    const target = item[TARGET]
    return `${target.endpoint}:${target.appId}`
  },

  buildRequest(items, connection) {
    const target = items[0]!.item[TARGET]
    return {
      url: `${connection.endpoint}${PATHS[target.endpoint]}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: buildHeapBody(items),
    }
  },

  classify: classifyHeapResponse,
}
