import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { backoffDelay } from './backoff.ts'

/**
 * Runs Redis operations until they succeed: while Redis is unreachable delivery simply waits (dedupe and the
 * shared rate limit cannot be honoured without it), readiness reports it, and work resumes by itself.
 */
export class RedisGate {
  #available = true
  readonly #log: Logger
  readonly #onChange: (available: boolean) => void

  constructor(log: Logger, onChange: (available: boolean) => void = () => {}) {
    this.#log = log
    this.#onChange = onChange
  }

  get available(): boolean {
    return this.#available
  }

  async run<T>(operation: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await operation()
        this.report(true)
        return result
      } catch (err) {
        if (signal?.aborted) throw signal.reason
        this.report(false, err)
        await sleep(backoffDelay(attempt, { baseMs: 100, maxMs: 2000 }), undefined, { signal })
      }
    }
  }

  /**
   * What Redis did outside `run`: a connection closed or ready again, a registry heartbeat that failed or went
   * through. An idle service learns of an outage this way too, so the gauge and readiness do not wait for work.
   */
  report(reachable: boolean, err?: unknown): void {
    if (reachable === this.#available) return
    this.#available = reachable
    this.#onChange(reachable)
    if (reachable) this.#log.info('redis reachable again, delivery resumes')
    else this.#log.warn(err === undefined ? {} : { err }, 'redis unreachable, delivery paused until it answers')
  }
}
