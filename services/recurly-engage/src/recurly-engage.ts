import { ConfigError, type ConfigProblem } from '@lookstream/config'
import { readNamedConnections, type FileConnection, type FileDestination, type FileSend } from '@lookstream/destination'
import { RecurlyEngageConfig, RecurlyEngageConnectionConfig } from './config.ts'
import { csvLine, toRecurlyRow } from './rows.ts'
import { S3Sink, type S3SinkOptions } from './s3-sink.ts'

export interface RecurlyEngageConnection extends FileConnection {
  sink: S3SinkOptions
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
