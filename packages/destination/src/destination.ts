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
   * Items the item schedule may run ahead by (default 1: strictly spaced). A request granted late (a busy event
   * loop, a slow Redis answer) then does not push every later one back: the next may go that much early.
   */
  itemBurst?: number
  /**
   * A request that wakes more than this many ms after its booked time on the shared schedule is booked again
   * instead of sent (sent late, it would arrive closer to the next one than the schedule spaces them: for APIs
   * whose windows leave little room). Default: sent however late.
   */
  rateLimitMaxLateMs?: number
  /**
   * What a 429 multiplies the shared rate by (at most once a second; default 0.5). An API whose limit is fixed and
   * published gets a 429 from timing jitter rather than a smaller limit, and needs only a small step down.
   */
  rateLimitDecreaseFactor?: number
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

/**
 * What the runtime knows of a connection's shared schedule when a response arrives, for `rateFeedback`. The
 * schedule is the item budget where the connection has one (`itemRatePerSecond`), else the request budget.
 */
export interface RateContext {
  /** The schedule's effective rate (units per second) when the request was booked: lowered by 429s and hints. */
  rate: number
  /** The rate configured for it (what it recovers to). */
  configuredRate: number
  /**
   * When the request was booked to go, on the schedule's clock (Redis time, epoch ms): closer to when the
   * destination counted it than the arrival of its response, which waits on the network and the event loop.
   */
  bookedAt: number
}

/**
 * A usage hint read from a response: run the connection's shared schedule (every replica) at no more than
 * `share` (0 < share ≤ 1) of its configured rate from now on; the cap recovers towards the configured rate by
 * itself (docs/adr/0021-rate-reservations-and-usage-hints.md).
 */
export interface RateHint {
  share: number
}

/** Reads one response of a connection (any status; network errors never reach it) and may answer a hint. */
export type RateFeedback = (response: HttpResponse, context: RateContext) => RateHint | undefined

interface DestinationBase<Config extends TSchema, Conn extends { name: string }> {
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
  /**
   * Settings of a connection announced in the destination registry, so the ingress can refuse a send this
   * connection would reject before producing anything (Heap: its environments). Never a secret.
   */
  publicSettings?(connection: Conn): Record<string, string | string[]>
}

/** A destination reached over HTTP in batches: everything but these pure functions belongs to the runtime. */
export interface HttpDestination<
  Config extends TSchema = TSchema,
  Conn extends Connection = Connection,
  Item = unknown,
> extends DestinationBase<Config, Conn> {
  kind: 'http'
  /**
   * The items are state (attributes, properties, profiles): a user's messages must arrive in order, so a later
   * one waits behind an earlier one parked in the retry topic (docs/adr/0022-per-user-order.md). Absent, messages
   * are delivered as they come (events, which the destination orders by their own timestamps).
   */
  orderedPerUser?: boolean
  /** The limits of a request; `limitsFor` overrides them per batch key. */
  limits: BatchLimits
  /**
   * Requests in flight per connection and batch key when DELIVERY_MAX_IN_FLIGHT_REQUESTS is not set (default 4).
   * An API that takes few items per request needs more of them in flight to keep pace (Braze: 75 objects).
   */
  inFlightRequests?: number
  /** Pure mapping of one canonical message to one request item, or the reason it can never be sent. */
  toItem(message: CanonicalMessage, connection: Conn): Item | PermanentError
  /**
   * Pure: which requests an item may share (Heap: its endpoint; a per-send option that changes the request's
   * envelope). Items of one connection and key are packed together; absent, every item of a connection may.
   */
  batchKey?(item: Item): string
  /** Pure: the limits of the requests of one batch key (absent: `limits`). */
  limitsFor?(batchKey: string): BatchLimits
  /**
   * Pure: the JSON an item is sent as, spliced by `buildRequest` and sized against the limits (absent:
   * `JSON.stringify(item)`). An item that carries more than it sends (Braze: its connection's request limits, for
   * `batchKey`) encodes only what is sent, without a `toJSON` call per item.
   */
  encode?(item: Item): string
  /** Pure: the request that carries these items (all of one connection and batch key). */
  buildRequest(items: readonly EncodedItem<Item>[], connection: Conn, now: Date): BuiltRequest
  /**
   * Pure: the outcome of every item of the request, in the order the items were handed to `buildRequest`
   * (network errors and timeouts never reach it). `request` is what `buildRequest` returned, layout included.
   */
  classify(response: HttpResponse, items: readonly EncodedItem<Item>[], request: BuiltRequest): Classification
  /**
   * For APIs that report how much of the account's limit is used (mParticle's `X-mp-rate-limit-percentage-used`):
   * called once per connection by each process; the function it returns sees every response of that connection
   * and may keep state between them (e.g. an estimate of the account's usage). Its hints slow the shared schedule
   * before the destination answers 429.
   */
  rateFeedback?(connection: Conn): RateFeedback
}

/** A named account of a file destination (a bucket and its credentials): whatever the sink needs. */
export interface FileConnection {
  name: string
}

/** One message as a row of the file: its column names (the header) and the row already encoded. */
export interface FileRow {
  columns: readonly string[]
  /** The encoded row, line ending included (e.g. one RFC 4180 CSV record). */
  line: string
}

/** What the file of one send is named after. */
export interface FileSend {
  sendId: string
  /** When the send started at the ingress. */
  startedAt: Date
}

/**
 * A destination that receives one complete file per send (Recurly Engage): the runtime gathers the rows of a
 * send from every partition, stages them durably through the connection's sink, and publishes the whole file
 * atomically once every accepted row is staged (docs/adr/0019-file-destination-gathering.md).
 */
export interface FileDestination<
  Config extends TSchema = TSchema,
  Conn extends FileConnection = FileConnection,
> extends DestinationBase<Config, Conn> {
  kind: 'file'
  /** Pure: the row of one message, or the reason it can never be one. Rows of one send share their columns. */
  toRow(message: CanonicalMessage, connection: Conn): FileRow | PermanentError
  /** Pure: the encoded header line of a file with these columns (line ending included). */
  encodeHeader(columns: readonly string[]): string
  /**
   * Pure: names the file of a send may take, in order of preference: the first one no other send holds is used
   * (two sends started in the same second get distinct files).
   */
  objectNames(send: FileSend, connection: Conn): readonly string[]
  /** The sink of a connection: created once per connection at startup. */
  openSink(connection: Conn): FileSink
}

/**
 * Durable storage for one connection: staged objects (private to the runtime, written whole or not at all) and
 * published files (visible only once complete, exactly once per name). The contract tests in
 * @lookstream/delivery-testing/file-sink-contract hold every implementation to it.
 */
export interface FileSink {
  /** Writes a staged object whole (a reader never sees part of it); replaces an existing one. */
  putStaged(key: string, body: Buffer): Promise<void>
  /** Keys of the staged objects under `prefix`, in any order. */
  listStaged(prefix: string): AsyncIterable<string>
  /**
   * The first key segments (before the first `/`) of the staged objects, each once, in any order: the send ids
   * with anything staged, found again after their state in Redis was lost.
   */
  listStagedFolders(): AsyncIterable<string>
  /** Streams a staged object. */
  readStaged(key: string): Promise<NodeJS.ReadableStream>
  /** Deletes staged objects (missing ones are not an error). */
  deleteStaged(keys: readonly string[]): Promise<void>
  /**
   * Streams `body` to the file `name`, which becomes visible only when `body` ended and was written completely;
   * when `body` errors or the write fails, nothing becomes visible and nothing unfinished is left behind.
   * `sendId` is recorded with the file (see `publishedBy`).
   */
  publish(name: string, body: NodeJS.ReadableStream, sendId: string): Promise<void>
  /** The send id a visible file `name` was published for; undefined when there is no such file. */
  publishedBy(name: string): Promise<string | undefined>
  /** Aborts unfinished writes of `name` left by an interrupted `publish` (a crash); resolves with how many. */
  abortUnfinished(name: string): Promise<number>
  /** Where a file is, for the send record and logs (e.g. `s3://bucket/key`); holds no secret. */
  locationOf(name: string): string
}

export type Destination = HttpDestination<TSchema, Connection, unknown> | FileDestination
