import { LookstreamError } from '@lookstream/service'

// Every error the delivery runtime raises or routes carries a code from this closed list (docs/errors.md says
// what each means and what to do about it). Destinations map a vendor's reason to the nearest code and keep the
// vendor's own words in the reason.
export type DestinationErrorCode =
  | 'LS_DEST_RETRYABLE'
  | 'LS_DEST_PERMANENT'
  | 'LS_DEST_REJECTED'
  | 'LS_DEST_RATE_LIMITED'
  | 'LS_DEST_TIMEOUT'
  | 'LS_DEST_NETWORK'
  | 'LS_DEST_INTERNAL'
  | 'LS_DEST_UNSUPPORTED_VALUE'
  | 'LS_DEST_MISSING_IDENTITY'
  | 'LS_DEST_UNSUPPORTED_MESSAGE'
  | 'LS_DEST_AUTH'
  | 'LS_DEST_ITEM_TOO_LARGE'
  | 'LS_DEST_INVALID_MESSAGE'
  | 'LS_DEST_UNKNOWN_CONNECTION'
  | 'LS_DEST_HOST_NOT_ALLOWED'
  | 'LS_DEST_RETRY_WINDOW_EXCEEDED'
  | 'LS_DEST_REDIS_UNAVAILABLE'
  | 'LS_DEST_ORDER_HELD'

type Digit = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9
type ToNumber<S> = S extends `${infer N extends number}` ? N : never
type ServerErrorStatus = ToNumber<`5${Digit}${Digit}`>

// The statuses worth retrying (408, 423, 425, 429, 5xx): the type system keeps a 400 out of a RetryableError.
export type RetryableStatus = 408 | 423 | 425 | 429 | ServerErrorStatus

export type ErrorClass = 'retryable' | 'permanent' | 'auth'

export class DestinationError extends LookstreamError {
  declare readonly code: DestinationErrorCode
  readonly status: number | undefined

  constructor(message: string, code: DestinationErrorCode, status?: number, options?: ErrorOptions) {
    super(code, message, { cause: options?.cause })
    this.name = 'DestinationError'
    this.status = status
  }
}

/** Transient: 408, 429, 5xx, network errors and timeouts (status undefined for the latter two). */
export class RetryableError extends DestinationError {
  readonly retryAfterMs: number | undefined

  constructor(
    message: string,
    status?: RetryableStatus,
    retryAfterMs?: number,
    options?: ErrorOptions & { code?: DestinationErrorCode },
  ) {
    super(message, options?.code ?? 'LS_DEST_RETRYABLE', status, options)
    this.name = 'RetryableError'
    this.retryAfterMs = retryAfterMs
  }
}

/** Never retried: the item goes to the DLQ with this message as the reason. */
export class PermanentError extends DestinationError {
  constructor(
    message: string,
    code: DestinationErrorCode = 'LS_DEST_PERMANENT',
    status?: number,
    options?: ErrorOptions,
  ) {
    super(message, code, status, options)
    this.name = 'PermanentError'
  }
}

/** 401/403: the connection's credentials are wrong; pause the connection instead of dead-lettering. */
export class AuthError extends DestinationError {
  constructor(message: string, status?: 401 | 403, options?: ErrorOptions) {
    super(message, 'LS_DEST_AUTH', status, options)
    this.name = 'AuthError'
  }
}

export function isRetryableStatus(status: number): status is RetryableStatus {
  return status === 408 || status === 423 || status === 425 || status === 429 || (status >= 500 && status <= 599)
}
