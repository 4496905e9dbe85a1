export {
  DEFAULT_FAILURE_LIMITS,
  DEFAULT_TTL_SECONDS,
  FAILURE_STAGES,
  MAX_CODE_CHARS,
  MAX_IDENTITY_KEYS,
  MAX_IDENTITY_VALUE_CHARS,
  MAX_REASON_CHARS,
  allRowFailures,
  encodeFailure,
  readFailureSummary,
  readRowFailures,
  recordRowFailures,
  type CountedFailure,
  type FailureLimits,
  type FailureStage,
  type FailureSummary,
  type RecordOptions,
  type RecordResult,
  type RowFailure,
  type StoredFailure,
} from './failures.ts'
export { checkSendId, dryRunKey, failureCountsKey, failuresKey, sendRecordKey } from './keys.ts'
export { MIN_SECRET_LENGTH, deriveHistoryKey, open, seal, type HistoryKey } from './seal.ts'
