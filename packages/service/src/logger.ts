import { type LogLevel } from '@lookstream/config'
import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino'
import { REDACTED, redactDeep, redactHeaders, redactUrl } from './redact.ts'

export interface LoggerOptions {
  name: string
  level?: LogLevel
  /** Where JSON lines go; stdout when omitted. Tests pass a stream to read the output. */
  stream?: DestinationStream
}

interface RequestLike {
  method?: string
  url?: string
  headers?: Record<string, unknown>
  ip?: string
  hostname?: string
  socket?: { remoteAddress?: string; remotePort?: number }
}

function serializeRequest(req: RequestLike): Record<string, unknown> {
  return {
    method: req.method,
    url: req.url === undefined ? undefined : redactUrl(req.url),
    host: req.hostname,
    remoteAddress: req.ip ?? req.socket?.remoteAddress,
    remotePort: req.socket?.remotePort,
    headers: req.headers === undefined ? undefined : redactHeaders(req.headers),
  }
}

function serializeReply(reply: { statusCode?: number }): Record<string, unknown> {
  return { statusCode: reply.statusCode }
}

// Error serializer output copies an error's own properties (an HTTP client's error may carry the
// request headers or config), so it is redacted like any other object.
function serializeError(err: Error): Record<string, unknown> {
  // The serialized error has pino's own prototype: spread it into a plain object to redact it.
  const out = { ...(stdSerializers.err(err) as unknown as Record<string, unknown>) }
  // ioredis attaches the failed command with its arguments: AUTH's are the credentials, a script's may be data.
  const command = out.command as { name?: unknown } | undefined
  if (command !== undefined) out.command = { name: typeof command?.name === 'string' ? command.name : REDACTED }
  return redactDeep(out)
}

/**
 * A pino logger that writes JSON and redacts by key name: any property whose name suggests a secret
 * (secret, token, key, password, credential, auth, cookie, ...) at any depth, sensitive request
 * headers and secret-looking query parameters. Pretty printing is deliberately absent: pino-pretty
 * is not a dependency, and logs are read by machines first.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      // Fixed paths catch the common shapes even if a serializer is bypassed.
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'headers.authorization',
          'headers.cookie',
          '*.password',
          '*.token',
          '*.secret',
        ],
        censor: REDACTED,
      },
      // ISO 8601 times and level names: what log pipelines and people read without a lookup table.
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => redactDeep(object),
        bindings: (bindings) => redactDeep(bindings),
      },
      serializers: { req: serializeRequest, res: serializeReply, err: serializeError },
    },
    options.stream ?? pino.destination({ fd: 1, sync: true }),
  )
}
