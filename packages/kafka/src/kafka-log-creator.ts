import { logLevel, type LogEntry, type logCreator } from 'kafkajs'
import { type Logger } from 'pino'

// Fields kafkajs may attach to a log entry that could carry record data or credentials; never logged.
const UNSAFE_FIELDS = new Set([
  'value',
  'messages',
  'payload',
  'topicData',
  'sasl',
  'ssl',
  'password',
  'headers',
  'key',
])

/** The kafkajs level that lets through exactly what the pino logger would print. */
export function kafkaLogLevelFor(logger: Logger): logLevel {
  switch (logger.level) {
    case 'trace':
    case 'debug':
      return logLevel.DEBUG
    case 'info':
      return logLevel.INFO
    case 'warn':
      return logLevel.WARN
    case 'error':
    case 'fatal':
      return logLevel.ERROR
    case 'silent':
    default:
      return logLevel.NOTHING
  }
}

// kafkajs warns on every idempotent producer whose retries are bounded. They are bounded on purpose, so a
// send fails (and the ingress can say so) when Kafka stays away; a resend after that can duplicate a record,
// which the deterministic messageId and the destinations' dedupe absorb.
const EXPECTED_WARNINGS = new Set(['Limiting retries for the idempotent producer may invalidate EoS guarantees'])

// kafkajs says at info level every time a partition's fetching is paused or resumed. The destination runtime pauses
// a partition whenever its in-flight bound is reached and resumes it as soon as deliveries free room: thousands of
// times on a large send, each a log line (and its serialisation) that tells an operator nothing. Debug instead.
const ROUTINE_INFO = ['Pausing fetching from ', 'Resuming fetching from ']

function isRoutine(message: string): boolean {
  return ROUTINE_INFO.some((prefix) => message.startsWith(prefix))
}

/** Routes kafkajs logs to pino under `{ kafka: namespace }`, dropping fields that could hold data or secrets. */
export function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _timestamp, logger: _logger, ...extra } = log as typeof log & { logger?: unknown }
      const fields: Record<string, unknown> = { kafka: namespace }
      for (const [name, value] of Object.entries(extra)) if (!UNSAFE_FIELDS.has(name)) fields[name] = value
      switch (
        EXPECTED_WARNINGS.has(message) || (level === logLevel.INFO && isRoutine(message)) ? logLevel.DEBUG : level
      ) {
        case logLevel.ERROR:
          logger.error(fields, message)
          break
        case logLevel.WARN:
          logger.warn(fields, message)
          break
        case logLevel.INFO:
          logger.info(fields, message)
          break
        case logLevel.DEBUG:
          logger.debug(fields, message)
          break
        case logLevel.NOTHING:
          break
      }
    }
}
