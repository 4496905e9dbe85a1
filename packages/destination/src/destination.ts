import type { Static, TSchema } from 'typebox'
import type { DestinationErrorCode, PermanentError } from './errors.ts'
import type { CanonicalMessage } from '@lookstream/events'

/**
 * Count and byte limits of one request; the runtime packs items up to them and lingers briefly to fill them.
 * Items of different batch keys never share a request, and each key may have its own limits.
 */
export interface BatchLimits {
  maxBatchItems: number
  /** Sum of the encoded items' bytes (plus separators); keep a margin for the envelope under the API limit. */
  maxBatchBytes: number
  /** An item larger than this is dead-lettered before anything is sent. */
  maxItemBytes: number
  lingerMs: number
}

/** A named set of credentials and endpoint for one account at the destination. */
export interface Connection {
  name: string
  /** Base URL requests for this connection go to; checked against the allowlist at startup. */
  endpoint: string
  /** Requests per second allowed for this connection, shared by every replica. */
  rateLimitRps: number
  /**
   * Items per second allowed for this connection, shared by every replica, for APIs that count events rather
   * than requests (Heap: items per minute per app). A request is charged its item count.
   */
  itemRatePerSecond?: number
  /**
   * The rate-limit scope: connections naming the same account share one budget (Braze: one per workspace,
   * whatever the number of connections pointing at it). Defaults to the connection's name.
   */
  rateLimitScope?: string
  /**
   * Caps the items per request for this connection below the destination's limit (an item-counted budget is kept
   * exactly when a whole number of full requests make up one second of it).
   */
  maxBatchItems?: number
}

/** An item mapped once and encoded once: the runtime sizes batches by `bytes` and builders splice `json`. */
export interface EncodedItem<Item> {
  item: Item
  json: string
  bytes: number
}

export interface HttpRequest {
  url: string
  method: 'POST' | 'PUT'
  headers: Record<string, string>
  body: string
}

/**
 * Where each item of a request went in its body, for APIs that answer per-item errors by position in one of
 * several arrays (Braze: `errors[].input_array` + `index`): `layout.attributes[3]` is the index, in the items
 * handed to `buildRequest`, of the fourth element of the body's `attributes` array.
 */
export type RequestLayout = Readonly<Record<string, readonly number[]>>

/** A request as the builder laid it out; the same object is handed to `classify` with the response. */
export interface BuiltRequest extends HttpRequest {
  layout?: RequestLayout
}

export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/**
 * What the destination did with one item. Every failure carries an error code from docs/errors.md (a vendor's
 * reason is mapped to the nearest `LS_DEST_*` code; the vendor's own words stay in `reason`). The runtime
 * defaults them to LS_DEST_RETRYABLE, LS_DEST_REJECTED and LS_DEST_AUTH.
 */
export type ItemOutcome =
  | { kind: 'delivered' }
  | { kind: 'retryable'; reason: string; status?: number; retryAfterMs?: number; code?: DestinationErrorCode }
  | { kind: 'permanent'; reason: string; status?: number; code?: DestinationErrorCode }
  | { kind: 'auth'; reason: string; status?: number; code?: DestinationErrorCode }

/**
 * The classifier's answer: one outcome per item (same order as sent), or a request to bisect the batch
 * because the API rejected it as a whole without saying which items were bad.
 */
export type Classification = { kind: 'items'; outcomes: ItemOutcome[] } | { kind: 'split'; reason: string }

interface DestinationBase<Config extends TSchema, Conn extends Connection> {
  /** Destination id: consumer group `lookstream.<name>`, topics `lookstream.retry|dlq.<name>`, metric label. */
  name: string
  /** Segment-style key in a message's `integrations` object (e.g. `Segment`, `Recurly Engage`). */
  integrationKey: string
  /** TypeBox schema of this destination's own environment (credentials per connection, rate limits). */
  config: Config
  /** Resolves the named connections from the loaded config; a message naming another one is dead-lettered. */
  connections(config: Static<Config>): ReadonlyMap<string, Conn>
  /** Hosts outbound requests may go to; any other URL is refused before a socket is opened. */
  allowedHosts(config: Static<Config>): readonly string[]
}

/** A destination reached over HTTP in batches: everything but these pure functions belongs to the runtime. */
export interface HttpDestination<
  Config extends TSchema = TSchema,
  Conn extends Connection = Connection,
  Item = unknown,
> extends DestinationBase<Config, Conn> {
  kind: 'http'
  /** The limits of a request; `limitsFor` overrides them per batch key. */
  limits: BatchLimits
  /** Pure mapping of one canonical message to one request item, or the reason it can never be sent. */
  toItem(message: CanonicalMessage, connection: Conn): Item | PermanentError
  /**
   * Pure: which requests an item may share (Heap: its endpoint; a per-send option that changes the request's
   * envelope). Items of one connection and key are packed together; absent, every item of a connection may.
   */
  batchKey?(item: Item): string
  /** Pure: the limits of the requests of one batch key (absent: `limits`). */
  limitsFor?(batchKey: string): BatchLimits
  /** Pure: the request that carries these items (all of one connection and batch key). */
  buildRequest(items: readonly EncodedItem<Item>[], connection: Conn, now: Date): BuiltRequest
  /**
   * Pure: the outcome of every item of the request, in the order the items were handed to `buildRequest`
   * (network errors and timeouts never reach it). `request` is what `buildRequest` returned, layout included.
   */
  classify(response: HttpResponse, items: readonly EncodedItem<Item>[], request: BuiltRequest): Classification
}

/**
 * Sketch of the file variant (Recurly Engage): rows are collected per send and written as one complete
 * object once the send's `finished` event arrives on lookstream.sends.v1. Not implemented by the runtime yet.
 */
export interface FileDestination<
  Config extends TSchema = TSchema,
  Conn extends Connection = Connection,
> extends DestinationBase<Config, Conn> {
  kind: 'file'
  /** Column order of the file; the first column is the join key (`user_id` for Recurly Engage). */
  columns(message: CanonicalMessage): readonly string[]
  toRow(message: CanonicalMessage, connection: Conn): Record<string, string> | PermanentError
  /** Opens a sink that streams rows to a temporary location and publishes atomically on commit. */
  openSink(sendId: string, connection: Conn): Promise<FileSink>
}

export interface FileSink {
  write(row: Record<string, string>): Promise<void>
  /** Makes the complete file visible under its final name, exactly once. */
  commit(): Promise<{ location: string; rows: number }>
  abort(): Promise<void>
}

export type Destination = HttpDestination<TSchema, Connection, unknown> | FileDestination
