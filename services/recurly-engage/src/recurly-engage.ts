import { ConfigError, type ConfigProblem } from '@lookstream/config'
import {
  PermanentError,
  readNamedConnections,
  type FileConnection,
  type FileDestination,
  type FileRow,
  type FileSend,
} from '@lookstream/destination'
import { type CanonicalMessage } from '@lookstream/events'
import { stringify } from 'csv-stringify/sync'
import { RecurlyEngageConfig, RecurlyEngageConnectionConfig } from './config.ts'
import { S3Sink, type S3SinkOptions } from './s3-sink.ts'

export interface RecurlyEngageConnection extends FileConnection {
  sink: S3SinkOptions
}

/** The first column of every file: the customer id Recurly Engage joins traits on. */
export const ID_COLUMN = 'user_id'

// RFC 4180: comma, double quotes (doubled inside), CRLF between records; a cell with a comma, a quote, CR or LF
// is quoted. Booleans are written as true/false, null as an empty cell; numbers as JavaScript writes them.
const CSV_OPTIONS = {
  record_delimiter: '\r\n',
  eof: true,
  // A lone LF or CR in a cell is quoted too (csv-stringify quotes only the record delimiter's sequence).
  quoted_match: /[\r\n]/,
  cast: { boolean: (value: boolean) => (value ? 'true' : 'false') },
} as const

export function csvLine(cells: readonly unknown[]): string {
  return stringify([cells], CSV_OPTIONS)
}

/** `traits_YYYYMMDDTHHmmssZ.csv` from the send's start (UTC). */
export function fileName(startedAt: Date): string {
  const stamp = startedAt
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')
  return `traits_${stamp}.csv`
}

function folder(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`
}

function cellProblem(value: unknown): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'a non-finite number'
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`
}

export function toRecurlyRow(message: CanonicalMessage): FileRow | PermanentError {
  if (message.type !== 'identify') {
    return new PermanentError(
      `Recurly Engage takes identify messages, not ${message.type}`,
      'LS_DEST_UNSUPPORTED_MESSAGE',
    )
  }
  if (message.userId === undefined) {
    return new PermanentError('identify has no userId (the user_id column)', 'LS_DEST_MISSING_IDENTITY')
  }
  const traits = message.traits ?? {}
  const columns = [ID_COLUMN]
  const cells: unknown[] = [message.userId]
  for (const key in traits) {
    if (!Object.hasOwn(traits, key)) continue
    if (key === ID_COLUMN) {
      return new PermanentError(`trait "${ID_COLUMN}" would repeat the first column`, 'LS_DEST_UNSUPPORTED_VALUE')
    }
    const value = traits[key]
    const problem = cellProblem(value)
    if (problem !== undefined) {
      return new PermanentError(
        `trait "${key}" holds ${problem}; a CSV cell takes text, numbers and booleans`,
        'LS_DEST_UNSUPPORTED_VALUE',
      )
    }
    columns.push(key)
    cells.push(value)
  }
  return { columns, line: csvLine(cells) }
}

export const recurlyEngage: FileDestination<typeof RecurlyEngageConfig, RecurlyEngageConnection> = {
  kind: 'file',
  name: 'recurly-engage',
  integrationKey: 'Recurly Engage',
  config: RecurlyEngageConfig,
  connections(config) {
    const allowed = new Set(recurlyEngage.allowedHosts(config))
    const problems: ConfigProblem[] = []
    const connections = new Map<string, RecurlyEngageConnection>()
    const add = (name: string, setting: string, c: RecurlyEngageConnectionConfig) => {
      const prefix = folder(c.prefix ?? '')
      const stagingPrefix = folder(c.stagingPrefix ?? config.RECURLY_ENGAGE_S3_STAGING_PREFIX)
      if (stagingPrefix.startsWith(prefix) || prefix.startsWith(stagingPrefix)) {
        problems.push({
          key: setting,
          expected: `a staging prefix outside the upload location (connection "${name}")`,
          given: `prefix ${JSON.stringify(prefix)} and staging prefix ${JSON.stringify(stagingPrefix)}`,
        })
      }
      if (c.endpoint !== undefined && !allowed.has(new URL(c.endpoint).host)) {
        problems.push({
          key: setting,
          expected: `an endpoint on RECURLY_ENGAGE_ALLOWED_HOSTS (connection "${name}")`,
          given: `host ${new URL(c.endpoint).host}`,
        })
      }
      if ((c.accessKeyId === undefined) !== (c.secretAccessKey === undefined)) {
        problems.push({
          key: setting,
          expected: `both an access key id and a secret access key, or neither (connection "${name}")`,
          given: 'only one of them',
        })
      }
      connections.set(name, {
        name,
        sink: {
          bucket: c.bucket,
          prefix,
          stagingPrefix,
          region: c.region ?? config.RECURLY_ENGAGE_S3_REGION,
          endpoint: c.endpoint,
          forcePathStyle: c.forcePathStyle ?? c.endpoint !== undefined,
          credentials:
            c.accessKeyId === undefined || c.secretAccessKey === undefined
              ? undefined
              : { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
          requestTimeoutMs: config.RECURLY_ENGAGE_S3_REQUEST_TIMEOUT_MS,
        },
      })
    }
    if (config.RECURLY_ENGAGE_S3_BUCKET !== undefined) {
      add('default', 'RECURLY_ENGAGE_S3_*', {
        bucket: config.RECURLY_ENGAGE_S3_BUCKET,
        prefix: config.RECURLY_ENGAGE_S3_PREFIX,
        region: config.RECURLY_ENGAGE_S3_REGION,
        ...(config.RECURLY_ENGAGE_S3_ENDPOINT === undefined ? {} : { endpoint: config.RECURLY_ENGAGE_S3_ENDPOINT }),
        ...(config.RECURLY_ENGAGE_S3_FORCE_PATH_STYLE === undefined
          ? {}
          : { forcePathStyle: config.RECURLY_ENGAGE_S3_FORCE_PATH_STYLE }),
        ...(config.RECURLY_ENGAGE_S3_ACCESS_KEY_ID === undefined
          ? {}
          : { accessKeyId: config.RECURLY_ENGAGE_S3_ACCESS_KEY_ID }),
        ...(config.RECURLY_ENGAGE_S3_SECRET_ACCESS_KEY === undefined
          ? {}
          : { secretAccessKey: config.RECURLY_ENGAGE_S3_SECRET_ACCESS_KEY }),
      })
    }
    for (const [name, c] of readNamedConnections('RECURLY_ENGAGE', RecurlyEngageConnectionConfig, config)) {
      add(name, 'RECURLY_ENGAGE_CONNECTIONS', c)
    }
    if (problems.length > 0) throw new ConfigError(problems)
    return connections
  },
  allowedHosts(config) {
    const hosts = (config.RECURLY_ENGAGE_ALLOWED_HOSTS ?? '')
      .split(',')
      .map((host) => host.trim())
      .filter((host) => host !== '')
    if (config.RECURLY_ENGAGE_S3_ENDPOINT !== undefined) hosts.push(new URL(config.RECURLY_ENGAGE_S3_ENDPOINT).host)
    return hosts
  },
  toRow: (message) => toRecurlyRow(message),
  encodeHeader: (columns) => csvLine(columns),
  objectNames(send: FileSend) {
    const name = fileName(send.startedAt)
    return [
      name,
      name.replace(/\.csv$/, `_${send.sendId.slice(0, 8)}.csv`),
      name.replace(/\.csv$/, `_${send.sendId}.csv`),
    ]
  },
  openSink: (connection) => new S3Sink(connection.sink),
}
