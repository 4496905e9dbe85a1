import { type CanonicalMessage } from '@lookstream/events'
import {
  PermanentError,
  classifyWholeRequest,
  readNamedConnections,
  type Connection,
  type EncodedItem,
  type HttpDestination,
  type HttpRequest,
} from '@lookstream/destination'
import { SEGMENT_API_HOSTS, SegmentConfig, SegmentConnectionConfig } from './config.ts'

export interface SegmentConnection extends Connection {
  endpoint: string
  /** `Basic base64(writeKey + ':')`, computed once; never logged. */
  authorization: string
}

/** One element of the /v1/batch `batch` array (Segment Spec fields; lookstream's routing stays behind). */
export interface SegmentItem {
  type: 'identify' | 'track' | 'group'
  messageId: string
  timestamp: string
  userId?: string
  anonymousId?: string
  groupId?: string
  event?: string
  traits?: Record<string, unknown>
  properties?: Record<string, unknown>
  context?: Record<string, unknown>
}

const KB = 1024

export function toSegmentItem(message: CanonicalMessage): SegmentItem {
  const item: SegmentItem = { type: message.type, messageId: message.messageId, timestamp: message.timestamp }
  if (message.userId !== undefined) item.userId = message.userId
  if (message.anonymousId !== undefined) item.anonymousId = message.anonymousId
  switch (message.type) {
    case 'identify':
      if (message.traits !== undefined) item.traits = message.traits
      break
    case 'track':
      item.event = message.event
      if (message.properties !== undefined) item.properties = message.properties
      break
    case 'group':
      item.groupId = message.groupId
      if (message.traits !== undefined) item.traits = message.traits
      break
  }
  if (message.context !== undefined) {
    // context.lookstream (send id, row number) is our bookkeeping, not the customer's data. Most contexts hold
    // nothing else: looking first spares the per-event copy and key list for them.
    const source = message.context
    for (const key in source) {
      if (key === 'lookstream' || !Object.hasOwn(source, key)) continue
      const { lookstream: _internal, ...context } = source
      item.context = context
      break
    }
  }
  return item
}

function hostOf(url: string): string {
  return new URL(url).host.toLowerCase()
}

export const segment: HttpDestination<typeof SegmentConfig, SegmentConnection, SegmentItem> = {
  kind: 'http',
  name: 'segment',
  integrationKey: 'Segment',
  config: SegmentConfig,
  // analytics-node's margins: 480 KB per request (the API takes 500 KB), 2,500 events, 32 KB per event.
  limits: { maxBatchItems: 2500, maxBatchBytes: 480 * KB - 64, maxItemBytes: 32 * KB, lingerMs: 20 },

  connections(config) {
    const connections = new Map<string, SegmentConnection>()
    const add = (name: string, writeKey: string, apiUrl: string, rateLimitRps: number) => {
      connections.set(name, {
        name,
        endpoint: apiUrl.replace(/\/+$/, ''),
        rateLimitRps,
        authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`,
      })
    }
    if (config.SEGMENT_WRITE_KEY !== undefined) {
      add('default', config.SEGMENT_WRITE_KEY, config.SEGMENT_API_URL, config.SEGMENT_RATE_LIMIT_RPS)
    }
    for (const [name, connection] of readNamedConnections('SEGMENT', SegmentConnectionConfig, config)) {
      add(
        name,
        connection.writeKey,
        connection.apiUrl ?? config.SEGMENT_API_URL,
        connection.rateLimitRps ?? config.SEGMENT_RATE_LIMIT_RPS,
      )
    }
    return connections
  },

  allowedHosts(config) {
    if (config.SEGMENT_ALLOWED_HOSTS !== undefined) {
      return config.SEGMENT_ALLOWED_HOSTS.split(',')
        .map((host) => host.trim().toLowerCase())
        .filter((host) => host.length > 0)
    }
    return [...SEGMENT_API_HOSTS, hostOf(config.SEGMENT_API_URL)]
  },

  toItem(message: CanonicalMessage): SegmentItem | PermanentError {
    if (message.userId === undefined && message.anonymousId === undefined) {
      // Segment would answer 200 and drop it (no_user_anon_id): say so here instead.
      return new PermanentError('neither userId nor anonymousId (Segment drops such events)')
    }
    return toSegmentItem(message)
  },

  buildRequest(items: readonly EncodedItem<SegmentItem>[], connection: SegmentConnection): HttpRequest {
    return {
      url: `${connection.endpoint}/v1/batch`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: connection.authorization },
      // The items were encoded once for sizing; splice them instead of stringifying the batch again.
      body: `{"batch":[${items.map((item) => item.json).join(',')}]}`,
    }
  },

  // Segment answers for the whole request (400 for a batch too large, an item too large, bad JSON: bisect).
  classify: classifyWholeRequest,
}
