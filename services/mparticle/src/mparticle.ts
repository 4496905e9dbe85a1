import {
  PermanentError,
  classifyWholeRequest,
  readNamedConnections,
  type Connection,
  type EncodedItem,
  type HttpDestination,
  type HttpRequest,
} from '@lookstream/destination'
import { uuidV5, type CanonicalMessage } from '@lookstream/events'
import {
  MPARTICLE_API_HOSTS,
  MPARTICLE_PODS,
  MparticleConfig,
  MparticleConnectionConfig,
  type MparticleConnectionConfig as ConnectionSettings,
} from './config.ts'
import { usageFeedback } from './usage-feedback.ts'

// Canonical messages to mParticle Events API batches, one user per batch (docs: destination-apis §4):
// - identities: `context.identities` as the ingress's mparticle action writes them (mp_* tags under the Events
//   API names), else `customer_id` = userId for other producers; a message with none is rejected;
// - identify → a batch with `user_attributes` = traits and `events: []` (a profile update);
// - track → one custom_event: event_name, custom_event_type (context.mParticle.custom_event_type, else the send's
//   eventType), custom_attributes = properties, event_id / session_id / session_uuid / timestamp_unixtime_ms
//   from context.mParticle; user_attributes from context.traits;
// - device_info from context.device (the ingress sends only mParticle's predefined keys);
// - source_request_id and source_message_id: the messageId when it is a UUID, else a UUIDv5 of it, so
//   mParticle's own dedupe holds across replays.
// mParticle answers 202 even for a bulk request some of whose batches it drops, so every limit is checked here
// and a row that would break one is rejected with the reason instead.

export interface MparticleConnection extends Connection {
  /** `Basic base64(key:secret)`, computed once; never logged. */
  authorization: string
  /** The account's limit in batches per second (the schedule runs a little under it: `schedule`). */
  batchLimit: number
  /** Whether X-mp-rate-limit-percentage-used slows the schedule (MPARTICLE_USAGE_HEADER). */
  usageHeader: boolean
}

export interface MparticleEvent {
  event_type: 'custom_event'
  data: Record<string, unknown>
}

export interface MparticleBatch {
  environment: 'production' | 'development'
  schema_version: 2
  source_request_id: string
  user_identities: Record<string, string>
  user_attributes?: Record<string, unknown>
  device_info?: Record<string, unknown>
  events: MparticleEvent[]
}

const KB = 1024
/**
 * How a batches-per-second limit is kept: mParticle counts batches in one-second windows, and a window can start
 * anywhere on the schedule, so it may hold one second of the schedule plus one whole request. Requests of at most
 * 1/27 of the limit, scheduled at the limit minus one request's worth, keep every window at or under the limit
 * (270/s: requests of ≤ 10 batches at 260 batches/s, 96 % of it).
 */
export function schedule(limit: number): { batchesPerRequest: number; batchesPerSecond: number } {
  const batchesPerRequest = Math.max(1, Math.min(100, Math.floor(limit / 27)))
  return { batchesPerRequest, batchesPerSecond: Math.max(limit / 2, limit - batchesPerRequest) }
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** Namespace of the UUIDs derived from messageIds that are not UUIDs: uuidV5('urn:lookstream:mparticle', URL). */
const SOURCE_ID_NAMESPACE = uuidV5('urn:lookstream:mparticle', '6ba7b811-9dad-11d1-80b4-00c04fd430c8')

export const IDENTITY_KEYS = new Set([
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
export const CUSTOM_EVENT_TYPES = new Set([
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
const EVENT_DATA_KEYS = ['event_id', 'session_id', 'session_uuid', 'timestamp_unixtime_ms'] as const

/** mParticle's published limits (default service limits). */
export const LIMITS = {
  eventName: 256,
  attributesPerEvent: 100,
  userAttributesPerBatch: 100,
  attributeName: 256,
  attributeValue: 4096,
  userAttributeList: 1000,
  userAttributeListEntry: 512,
} as const

function reject(
  reason: string,
  code: 'LS_DEST_UNSUPPORTED_VALUE' | 'LS_DEST_MISSING_IDENTITY' = 'LS_DEST_UNSUPPORTED_VALUE',
) {
  return new PermanentError(reason, code)
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isScalar(value: unknown): value is string | number | boolean {
  return (
    typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))
  )
}

/** A source id mParticle accepts (UUID pattern) that is the same for every replay of the message. */
export function sourceId(messageId: string): string {
  return UUID.test(messageId) ? messageId.toLowerCase() : uuidV5(messageId, SOURCE_ID_NAMESPACE)
}

/**
 * Attributes as mParticle takes them, or the reason they cannot be sent. Null values are left out (mParticle has
 * no null attribute; a null cell changes nothing), every other value must fit the limits exactly: nothing is
 * truncated.
 */
function attributes(
  source: Record<string, unknown> | undefined,
  where: string,
  allowLists: boolean,
  max: number,
): Record<string, unknown> | PermanentError | undefined {
  if (source === undefined) return undefined
  const out: Record<string, unknown> = {}
  let count = 0
  for (const name of Object.keys(source)) {
    const value = source[name]
    if (value === null || value === undefined) continue
    if (name.length > LIMITS.attributeName) {
      return reject(`${where} attribute name of ${name.length} characters is over mParticle's ${LIMITS.attributeName}`)
    }
    if (Array.isArray(value) && allowLists) {
      if (value.length > LIMITS.userAttributeList) {
        return reject(
          `${where} attribute "${name}" is a list of ${value.length} entries, over mParticle's ${LIMITS.userAttributeList}`,
        )
      }
      for (const entry of value) {
        if (!isScalar(entry)) return reject(`${where} attribute "${name}" is a list holding a non-scalar value`)
        if (String(entry).length > LIMITS.userAttributeListEntry) {
          return reject(
            `${where} attribute "${name}" has a list entry over mParticle's ${LIMITS.userAttributeListEntry} characters`,
          )
        }
      }
    } else if (!isScalar(value)) {
      const what = Array.isArray(value) ? 'a list' : typeof value === 'number' ? 'a non-finite number' : 'an object'
      return reject(`${where} attribute "${name}" holds ${what}, which mParticle does not take there`)
    } else if (typeof value === 'string' && value.length > LIMITS.attributeValue) {
      return reject(
        `${where} attribute "${name}" is ${value.length} characters, over mParticle's ${LIMITS.attributeValue}`,
      )
    }
    out[name] = value
    count++
  }
  if (count > max)
    return reject(`${count} ${where} attributes, over mParticle's ${max} per ${where === 'user' ? 'batch' : 'event'}`)
  return count === 0 ? undefined : out
}

interface MparticleOptions {
  environment?: string
  eventType?: string
}

function optionsOf(message: CanonicalMessage): MparticleOptions {
  const options = message.integrations?.mParticle
  return isRecord(options) ? options : {}
}

/** The Events API batch of one canonical message, or the reason it cannot be sent. */
export function toBatch(message: CanonicalMessage): MparticleBatch | PermanentError {
  if (message.type === 'group') {
    return new PermanentError(
      'mParticle takes user profiles and events; a group message has no place there',
      'LS_DEST_UNSUPPORTED_MESSAGE',
    )
  }
  const context: Record<string, unknown> = isRecord(message.context) ? message.context : {}
  const identities: Record<string, string> = {}
  if (isRecord(context.identities)) {
    for (const [key, value] of Object.entries(context.identities)) {
      if (!IDENTITY_KEYS.has(key)) return reject(`"${key}" is not an mParticle identity type`)
      if (value === null || value === undefined) continue
      if (typeof value !== 'string' || value === '') return reject(`identity ${key} must be a non-empty string`)
      identities[key] = value
    }
  } else if (message.userId !== undefined) {
    identities.customer_id = message.userId
  }
  if (Object.keys(identities).length === 0) {
    return reject('the row has no mParticle identity (customer_id, email, other, …)', 'LS_DEST_MISSING_IDENTITY')
  }
  const options = optionsOf(message)
  const batch: MparticleBatch = {
    environment: options.environment === 'production' ? 'production' : 'development',
    schema_version: 2,
    source_request_id: sourceId(message.messageId),
    user_identities: identities,
    events: [],
  }
  const userSource =
    message.type === 'identify' ? message.traits : isRecord(context.traits) ? context.traits : undefined
  const user = attributes(userSource, 'user', true, LIMITS.userAttributesPerBatch)
  if (user instanceof PermanentError) return user
  if (user !== undefined) batch.user_attributes = user
  if (isRecord(context.device)) {
    const device: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(context.device)) {
      if (value === null || value === undefined) continue
      if (!isScalar(value)) return reject(`device_info ${key} holds a non-scalar value`)
      device[key] = value
    }
    if (Object.keys(device).length > 0) batch.device_info = device
  }
  if (message.type === 'track') {
    if (message.event.length > LIMITS.eventName) {
      return reject(
        `event name of ${message.event.length} characters is over mParticle's ${LIMITS.eventName} (it would be cut)`,
      )
    }
    const extra = isRecord(context.mParticle) ? context.mParticle : {}
    const eventType = extra.custom_event_type ?? options.eventType ?? 'other'
    if (typeof eventType !== 'string' || !CUSTOM_EVENT_TYPES.has(eventType)) {
      return reject(`custom_event_type must be one of ${[...CUSTOM_EVENT_TYPES].join(', ')}`)
    }
    const data: Record<string, unknown> = {
      event_name: message.event,
      custom_event_type: eventType,
      source_message_id: batch.source_request_id,
    }
    for (const key of EVENT_DATA_KEYS) {
      const value = extra[key]
      if (value === undefined || value === null) continue
      if (key === 'timestamp_unixtime_ms') {
        const ms = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value
        if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) {
          return reject('timestamp_unixtime_ms must be a whole number of milliseconds')
        }
        data[key] = ms
      } else if (!isScalar(value)) {
        return reject(`${key} must be a scalar value`)
      } else {
        data[key] = value
      }
    }
    const custom = attributes(message.properties, 'event', false, LIMITS.attributesPerEvent)
    if (custom instanceof PermanentError) return custom
    if (custom !== undefined) data.custom_attributes = custom
    batch.events.push({ event_type: 'custom_event', data })
  }
  return batch
}

function hostOf(url: string): string {
  return new URL(url).host.toLowerCase()
}

function baseUrl(settings: Pick<ConnectionSettings, 'pod' | 'apiUrl'>, fallback: string): string {
  if (settings.apiUrl !== undefined) return settings.apiUrl.replace(/\/+$/, '')
  if (settings.pod !== undefined) return MPARTICLE_PODS[settings.pod]
  return fallback
}

export const mparticle: HttpDestination<typeof MparticleConfig, MparticleConnection, MparticleBatch> = {
  kind: 'http',
  // User attributes and identities are state: a user's later update must never land before an earlier one.
  orderedPerUser: true,
  name: 'mparticle',
  integrationKey: 'mParticle',
  config: MparticleConfig,
  // 100 batches and under 256 KB per request (the array's brackets and commas count); a batch of at most 128 KB.
  limits: { maxBatchItems: 100, maxBatchBytes: 256 * KB - 64, maxItemBytes: 128 * KB, lingerMs: 20 },
  // At most 100 batches per request: more requests in flight than the runtime's default keep it busy.
  inFlightRequests: 16,

  connections(config) {
    const connections = new Map<string, MparticleConnection>()
    const fallback = config.MPARTICLE_API_URL?.replace(/\/+$/, '') ?? MPARTICLE_PODS[config.MPARTICLE_POD]
    const add = (name: string, settings: ConnectionSettings, url: string) => {
      const limit = settings.batchesPerSecond ?? config.MPARTICLE_BATCHES_PER_SECOND
      const { batchesPerRequest, batchesPerSecond } = schedule(limit)
      connections.set(name, {
        name,
        endpoint: url,
        // The budget is in batches: a request is charged its batch count; requests alone are not limited
        // beyond it (each carries at least one batch).
        rateLimitRps: batchesPerSecond,
        itemRatePerSecond: batchesPerSecond,
        maxBatchItems: batchesPerRequest,
        // Connections of one API key share mParticle's limit, whatever their names.
        rateLimitScope: `key:${uuidV5(settings.apiKey, SOURCE_ID_NAMESPACE)}`,
        // A request that wakes more than 25 ms after its booked time is booked again: a window at 260/s holds
        // 270 batches until requests arrive 38 ms closer together than booked; the rest is for the network.
        rateLimitMaxLateMs: 25,
        // mParticle's limit is fixed: a 429 at the schedule's pace comes from a request arriving late, not from a
        // smaller limit. A tenth off (back within ~6 s) instead of half (~30 s); usage hints cover other clients.
        rateLimitDecreaseFactor: 0.9,
        batchLimit: limit,
        usageHeader: config.MPARTICLE_USAGE_HEADER,
        authorization: `Basic ${Buffer.from(`${settings.apiKey}:${settings.apiSecret}`).toString('base64')}`,
      })
    }
    if (config.MPARTICLE_API_KEY !== undefined && config.MPARTICLE_API_SECRET !== undefined) {
      add('default', { apiKey: config.MPARTICLE_API_KEY, apiSecret: config.MPARTICLE_API_SECRET }, fallback)
    }
    for (const [name, settings] of readNamedConnections('MPARTICLE', MparticleConnectionConfig, config)) {
      add(name, settings, baseUrl(settings, fallback))
    }
    return connections
  },

  allowedHosts(config) {
    if (config.MPARTICLE_ALLOWED_HOSTS !== undefined) {
      return config.MPARTICLE_ALLOWED_HOSTS.split(',')
        .map((host) => host.trim().toLowerCase())
        .filter((host) => host.length > 0)
    }
    const hosts: string[] = [...MPARTICLE_API_HOSTS]
    if (config.MPARTICLE_API_URL !== undefined) hosts.push(hostOf(config.MPARTICLE_API_URL))
    return hosts
  },

  toItem(message: CanonicalMessage): MparticleBatch | PermanentError {
    return toBatch(message)
  },

  buildRequest(items: readonly EncodedItem<MparticleBatch>[], connection: MparticleConnection): HttpRequest {
    return {
      url: `${connection.endpoint}/bulkevents`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: connection.authorization },
      body: `[${items.map((item) => item.json).join(',')}]`,
    }
  },

  // mParticle speaks for the whole request: a 400 names no batch, so the runtime bisects to the one refused.
  classify: classifyWholeRequest,

  // Other clients of the same account use part of its limit: the usage header shows it before any 429.
  rateFeedback(connection) {
    return connection.usageHeader ? usageFeedback({ limit: connection.batchLimit }) : () => undefined
  },
}
