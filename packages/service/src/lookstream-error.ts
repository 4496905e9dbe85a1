// The error base class for lookstream packages: a stable `code` from the one project-wide namespace
// (`LS_<AREA>_<WHAT>`, listed in docs/errors.md), the HTTP status it maps to, and the chained cause. Fastify
// uses `statusCode` when such an error escapes a route.
export interface LookstreamErrorOptions {
  statusCode?: number
  cause?: unknown
}

export class LookstreamError extends Error {
  readonly code: string
  readonly statusCode: number

  constructor(code: string, message: string, options: LookstreamErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'LookstreamError'
    this.code = code
    this.statusCode = options.statusCode ?? 500
  }
}
