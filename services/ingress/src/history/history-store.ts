import {
  allRowFailures,
  readFailureSummary,
  type FailureLimits,
  type FailureSummary,
  type HistoryKey,
  type StoredFailure,
} from '@lookstream/send-history'
import type { Redis } from 'ioredis'
import { FailureRecorder } from './failure-recorder.ts'

/** The send history's failed rows in Redis (see @lookstream/send-history), for the ingress. */
export interface HistoryStore {
  recorder(sendId: string, onError: (err: unknown) => void): FailureRecorder
  summary(sendId: string): Promise<FailureSummary>
  failures(sendId: string): AsyncGenerator<StoredFailure[]>
}

export function createHistoryStore(options: {
  redis: Redis
  key: HistoryKey
  limits: FailureLimits
  ttlSeconds: number
}): HistoryStore {
  const { redis, key, limits, ttlSeconds } = options
  return {
    recorder: (sendId, onError) => new FailureRecorder(sendId, { redis, key, limits, ttlSeconds, onError }),
    summary: (sendId) => readFailureSummary(redis, sendId),
    failures: (sendId) => allRowFailures(redis, sendId, key),
  }
}
