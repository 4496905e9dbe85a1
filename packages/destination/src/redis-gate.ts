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
        if (!this.#available) {
          this.#available = true
          this.#onChange(true)
          this.#log.info('redis reachable again, delivery resumes')
        }
        return result
      } catch (err) {
        if (signal?.aborted) throw signal.reason
        if (this.#available) {
          this.#available = false
          this.#onChange(false)
          this.#log.warn({ err }, 'redis unreachable, delivery paused until it answers')
        }
        await sleep(backoffDelay(attempt, { baseMs: 100, maxMs: 2000 }), undefined, { signal })
      }
    }
  }
}
