import type { Static, TSchema } from 'typebox'
import type { PermanentError } from './errors.ts'
import type { CanonicalMessage } from '@lookstream/events'

/** Count and byte limits of one request; the runtime packs items up to them and lingers briefly to fill them. */
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

export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

export type ItemOutcome =
  | { kind: 'delivered' }
  | { kind: 'retryable'; reason: string; status?: number; retryAfterMs?: number }
  | { kind: 'permanent'; reason: string; status?: number }
  | { kind: 'auth'; reason: string; status?: number }

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
  limits: BatchLimits
  /** Pure mapping of one canonical message to one request item, or the reason it can never be sent. */
  toItem(message: CanonicalMessage, connection: Conn): Item | PermanentError
  /** Pure: the request that carries these items. */
  buildRequest(items: readonly EncodedItem<Item>[], connection: Conn, now: Date): HttpRequest
  /** Pure: the outcome of every item of the request (network errors and timeouts never reach it). */
  classify(response: HttpResponse, items: readonly EncodedItem<Item>[]): Classification
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
