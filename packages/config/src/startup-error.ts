/**
 * A start-up failure an operator fixes in configuration (credentials refused, a certificate not trusted, an
 * unsafe topic): printed as one line `CODE: message` naming the setting, and the process exits 1.
 */
export class StartupError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StartupError'
    this.code = code
  }
}
