import type { Logger } from 'pino'

/**
 * Logs an event at most once per `intervalMs` per key (e.g. dead-lettering per destination, connection and
 * code): a send of a million bad rows writes a line every interval with how many it stands for, not a million.
 */
export class ThrottledLog {
  readonly #log: Logger
  readonly #intervalMs: number
  readonly #last = new Map<string, { at: number; suppressed: number }>()

  constructor(log: Logger, intervalMs = 10_000) {
    this.#log = log
    this.#intervalMs = intervalMs
  }

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now()
    const last = this.#last.get(key)
    if (last !== undefined && now - last.at < this.#intervalMs) {
      last.suppressed++
      return
    }
    // `similar`: how many events of this key since the last line were not logged.
    this.#log.warn({ ...fields, similar: last?.suppressed ?? 0 }, message)
    this.#last.set(key, { at: now, suppressed: 0 })
    // Keys are few (destination × connection × code); still, never let the map grow without bound.
    if (this.#last.size > 10_000) this.#last.clear()
  }
}
