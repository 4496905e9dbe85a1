import {
  allRowFailures,
  dryRunKey,
  open,
  seal,
  readFailureSummary,
  type FailureLimits,
  type FailureSummary,
  type HistoryKey,
  type StoredFailure,
} from '@lookstream/send-history'
import type { RedisClient as Redis } from '@lookstream/redis'
import { ChangedRows, type ChangedRowsScope } from './changed-rows.ts'
import { type DryRunReport } from './dry-run.ts'
import { FailureRecorder } from './failure-recorder.ts'

/** The send history's failed rows in Redis (see @lookstream/send-history), for the ingress. */
export interface HistoryStore {
  recorder(sendId: string, onError: (err: unknown) => void): FailureRecorder
  summary(sendId: string): Promise<FailureSummary>
  failures(sendId: string): AsyncGenerator<StoredFailure[]>
  saveDryRun(sendId: string, report: DryRunReport): Promise<void>
  /** Undefined for a send that was not a dry run (or whose report expired or is sealed under another key). */
  dryRun(sendId: string): Promise<DryRunReport | undefined>
  /** The remembered rows of a scheduled plan, for "changed rows only" (remember false: a dry run). */
  changedRows(scope: ChangedRowsScope, mode: 'changed' | 'all_remember', remember: boolean): Promise<ChangedRows>
}

export function createHistoryStore(options: {
  redis: Redis
  key: HistoryKey
  limits: FailureLimits
  ttlSeconds: number
  /** Rows remembered per scheduled plan (16 bytes each in Redis). */
  maxRememberedRows: number
}): HistoryStore {
  const { redis, key, limits, ttlSeconds, maxRememberedRows } = options
  return {
    recorder: (sendId, onError) => new FailureRecorder(sendId, { redis, key, limits, ttlSeconds, onError }),
    summary: (sendId) => readFailureSummary(redis, sendId),
    failures: (sendId) => allRowFailures(redis, sendId, key),
    async saveDryRun(sendId, report) {
      await redis.set(dryRunKey(sendId), seal(key, JSON.stringify(report)), 'EX', ttlSeconds)
    },
    changedRows: (scope, mode, remember) =>
      ChangedRows.open({ redis, scope, mode, historyKey: key, maxRows: maxRememberedRows, ttlSeconds, remember }),
    async dryRun(sendId) {
      const sealed = await redis.get(dryRunKey(sendId))
      const text = sealed === null ? undefined : open(key, sealed)
      return text === undefined ? undefined : (JSON.parse(text) as DryRunReport)
    },
  }
}
