export { backoffDelay, retryAfterMs, type BackoffPolicy } from './backoff.ts'
export { DEFAULT_DEDUPE_TTL_SECONDS, Dedupe, dedupeKey } from './dedupe.ts'
export { Deliverer, type DeliveryJob, type DeliveryPolicy, type FinalOutcome, type HttpClient } from './deliverer.ts'
export { classifyWholeRequest } from './classify-status.ts'
export { connectionsEnv, readNamedConnections } from './connections.ts'
export { main } from './main.ts'
export type {
  BatchLimits,
  BuiltRequest,
  RequestLayout,
  Classification,
  Connection,
  Destination,
  EncodedItem,
  FileConnection,
  FileDestination,
  FileRow,
  FileSend,
  FileSink,
  HttpDestination,
  HttpRequest,
  HttpResponse,
  ItemOutcome,
  RateContext,
  RateFeedback,
  RateHint,
} from './destination.ts'
export {
  AuthError,
  DestinationError,
  PermanentError,
  RetryableError,
  isRetryableStatus,
  type DestinationErrorCode,
  type ErrorClass,
  type RetryableStatus,
} from './errors.ts'
export { HttpSender, type HttpSenderOptions } from './http-sender.ts'
export { createDestinationMetrics, type DestinationMetrics } from './metrics.ts'
export { batchBytes, bisect, packBatches } from './pack-batches.ts'
export {
  RateLimiter,
  RESERVATION_HORIZON_MS,
  type Acquisition,
  type Booking,
  type Budget,
  type RateLimitOptions,
  type Reservation,
} from './rate-limiter.ts'
export { RedisGate } from './redis-gate.ts'
export { routeRecord, type InboundRecord, type Route } from './route-record.ts'
export { DeliveryEnv } from './delivery-config.ts'
export {
  RUNTIME_HEADERS,
  failureHeaders,
  historyOf,
  type DeliveryHistory,
  type FailureInfo,
} from './failure-headers.ts'
export { processRecords, type OutboundRecord, type ProcessorDeps, type RetryPolicy } from './process-records.ts'
export {
  RuntimeConfig,
  runDestination,
  type RunDestinationOptions,
  type RunningDestination,
} from './run-destination.ts'
export { addSendCounts, sendRecordKey, type SendCountDelta } from './send-counts.ts'
export {
  ORDER_HEADER,
  UserOrder,
  orderDeadlinesKey,
  orderMarksKey,
  orderUserOf,
  orderVerdict,
  parseTicket,
  type OrderMark,
  type OrderTicket,
  type UserOrderSettings,
} from './user-order.ts'
export { FileEnv } from './file/file-config.ts'
export { FileRuntimeConfig, runFileDestination } from './file/run-file-destination.ts'
export { ChunkWriter, chunkKey, parseChunkKey, readFrames } from './file/staged-chunk.ts'
export { HeaderMismatch, RowCountMismatch, composeBody, listChunks, type ChunkReadRetry } from './file/compose.ts'
export { fileOpenSetKey, fileSendKeys } from './file/send-state.ts'
