import {
  recordRowFailures,
  type CountedFailure,
  type FailureLimits,
  type HistoryKey,
  type RowFailure,
} from '@lookstream/send-history'
import type { RedisClient as Redis } from '@lookstream/redis'

// Collects a send's rejected rows and writes them to the send history in batches, off the row loop.
// Past the per-send entry limit only counts are sent (the details would be dropped by Redis anyway).

const FLUSH_EVERY = 500

export interface FailureRecorderOptions {
  redis: Redis
  key: HistoryKey
  limits: FailureLimits
  ttlSeconds: number
  onError: (err: unknown) => void
}

export class FailureRecorder {
  private pending: RowFailure[] = []
  private countOnly: CountedFailure[] = []
  private queued = 0
  private writing: Promise<void> = Promise.resolve()

  private readonly sendId: string
  private readonly options: FailureRecorderOptions

  constructor(sendId: string, options: FailureRecorderOptions) {
    this.sendId = sendId
    this.options = options
  }

  add(failure: RowFailure): void {
    if (this.queued < this.options.limits.maxEntries) {
      this.pending.push(failure)
      this.queued++
    } else {
      this.countOnly.push({ stage: failure.stage, destination: failure.destination, code: failure.code })
    }
    if (this.pending.length + this.countOnly.length >= FLUSH_EVERY) this.flush()
  }

  /** Starts writing what is pending; writes happen one after another, in order. */
  flush(): void {
    if (this.pending.length === 0 && this.countOnly.length === 0) return
    const entries = this.pending
    const countOnly = this.countOnly
    this.pending = []
    this.countOnly = []
    const { redis, key, limits, ttlSeconds, onError } = this.options
    this.writing = this.writing.then(() =>
      recordRowFailures(redis, this.sendId, entries, { key, ...limits, ttlSeconds, countOnly }).then(
        () => undefined,
        onError,
      ),
    )
  }

  /** Writes what is pending and waits for every write. */
  async close(): Promise<void> {
    this.flush()
    await this.writing
  }
}
