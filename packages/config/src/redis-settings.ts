import { ConfigError } from './config-error.ts'
import { type RedisMode } from './fragments.ts'
import { type TlsMaterial } from './kafka-security.ts'
import { SettingFiles, type ReadFile } from './setting-files.ts'

/** The RedisEnv keys (the result of loadConfig with RedisEnv). */
export interface RedisEnvSettings {
  REDIS_URL: string
  REDIS_MODE: RedisMode
  REDIS_CLUSTER_NODES?: string | undefined
  REDIS_SENTINELS?: string | undefined
  REDIS_SENTINEL_MASTER?: string | undefined
  REDIS_SENTINEL_USERNAME?: string | undefined
  REDIS_SENTINEL_PASSWORD?: string | undefined
  REDIS_SENTINEL_PASSWORD_FILE?: string | undefined
  REDIS_USERNAME?: string | undefined
  REDIS_USERNAME_FILE?: string | undefined
  REDIS_PASSWORD?: string | undefined
  REDIS_PASSWORD_FILE?: string | undefined
  REDIS_TLS_CA_FILE?: string | undefined
  REDIS_TLS_CERT_FILE?: string | undefined
  REDIS_TLS_KEY_FILE?: string | undefined
  REDIS_TLS_SERVERNAME?: string | undefined
}

export interface RedisNode {
  host: string
  port: number
}

/** How to reach Redis. Holds secrets: never log it (describeRedis gives a safe summary). */
export interface RedisConnection {
  mode: RedisMode
  /** standalone: the server; cluster: seed nodes; sentinel: the sentinels. */
  nodes: RedisNode[]
  db: number
  username?: string
  password?: string
  /** rediss://: TLS to every node (and to the sentinels). */
  tls: TlsMaterial | null
  sentinel?: { masterName: string; username?: string; password?: string }
}

function nodeList(list: string): RedisNode[] {
  return list
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const colon = entry.lastIndexOf(':')
      return { host: entry.slice(0, colon), port: Number(entry.slice(colon + 1)) }
    })
}

/**
 * Reads the Redis settings and the files they name, and checks that they fit together; throws one ConfigError
 * naming every setting to fix. Credentials in REDIS_URL are allowed but never shown; giving them both there and
 * in REDIS_USERNAME / REDIS_PASSWORD is an error.
 */
export function resolveRedisSettings(settings: RedisEnvSettings, read?: ReadFile): RedisConnection {
  const files = new SettingFiles(read)
  let url: URL | null = null
  try {
    url = new URL(settings.REDIS_URL)
  } catch {
    files.problem(
      'REDIS_URL',
      'a redis:// or rediss:// URL',
      'a value that is not a URL (not shown: it may hold a password)',
    )
  }
  const connection: RedisConnection = { mode: settings.REDIS_MODE, nodes: [], db: 0, tls: null }
  if (url !== null) {
    const tls = url.protocol === 'rediss:'
    if (url.hostname === '') files.problem('REDIS_URL', 'a URL with a host', 'a URL without one')
    const port = url.port === '' ? 6379 : Number(url.port)
    connection.nodes = [{ host: url.hostname.replace(/^\[|\]$/g, ''), port }]
    const path = url.pathname.replace(/^\//, '')
    if (path !== '') {
      if (!/^\d{1,2}$/.test(path))
        files.problem('REDIS_URL', 'a database number 0-99 as its path, or none', 'another path')
      else connection.db = Number(path)
    }
    if (settings.REDIS_MODE === 'cluster' && connection.db !== 0) {
      files.problem(
        'REDIS_URL',
        'no database number with REDIS_MODE=cluster (Redis Cluster has only database 0)',
        `/${connection.db}`,
      )
    }
    const urlUser = decodeURIComponent(url.username)
    const urlPassword = decodeURIComponent(url.password)
    const username = files.value('REDIS_USERNAME', settings.REDIS_USERNAME, settings.REDIS_USERNAME_FILE, null)
    const password = files.value('REDIS_PASSWORD', settings.REDIS_PASSWORD, settings.REDIS_PASSWORD_FILE, null)
    if (urlUser !== '' && username !== undefined) {
      files.problem('REDIS_USERNAME', 'to be unset when REDIS_URL holds a user name', 'a value')
    }
    if (urlPassword !== '' && password !== undefined) {
      files.problem('REDIS_PASSWORD', 'to be unset when REDIS_URL holds a password', 'a value')
    }
    const user = username ?? (urlUser === '' ? undefined : urlUser)
    const secret = password ?? (urlPassword === '' ? undefined : urlPassword)
    if (user !== undefined) connection.username = user
    if (secret !== undefined) connection.password = secret
    if (user !== undefined && secret === undefined) {
      files.problem(
        'REDIS_PASSWORD',
        'to be set with an ACL user name (REDIS_USERNAME or the URL user)',
        'nothing (not set)',
      )
    }

    if (tls) {
      const material: TlsMaterial = {}
      const ca = files.pem('REDIS_TLS_CA_FILE', settings.REDIS_TLS_CA_FILE, 'CERTIFICATE')
      if (ca !== undefined) material.ca = ca
      if ((settings.REDIS_TLS_CERT_FILE === undefined) !== (settings.REDIS_TLS_KEY_FILE === undefined)) {
        const missing = settings.REDIS_TLS_CERT_FILE === undefined ? 'REDIS_TLS_CERT_FILE' : 'REDIS_TLS_KEY_FILE'
        files.problem(
          missing,
          'to be set: a client certificate needs both REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE',
          'nothing (not set)',
        )
      } else {
        const cert = files.pem('REDIS_TLS_CERT_FILE', settings.REDIS_TLS_CERT_FILE, 'CERTIFICATE')
        const key = files.pem('REDIS_TLS_KEY_FILE', settings.REDIS_TLS_KEY_FILE, 'PRIVATE KEY')
        if (cert !== undefined) material.cert = cert
        if (key !== undefined) material.key = key
      }
      if (settings.REDIS_TLS_SERVERNAME !== undefined) material.servername = settings.REDIS_TLS_SERVERNAME
      connection.tls = material
    } else {
      for (const key of [
        'REDIS_TLS_CA_FILE',
        'REDIS_TLS_CERT_FILE',
        'REDIS_TLS_KEY_FILE',
        'REDIS_TLS_SERVERNAME',
      ] as const) {
        if (settings[key] !== undefined) {
          files.problem(key, 'to be unset with a redis:// URL (use rediss:// for TLS)', 'a value')
        }
      }
    }
  }

  const unused = (keys: readonly (keyof RedisEnvSettings)[], needs: string) => {
    for (const key of keys) {
      if (settings[key] !== undefined) files.problem(key, `to be unset unless REDIS_MODE=${needs}`, 'a value')
    }
  }
  if (settings.REDIS_MODE === 'cluster') {
    if (settings.REDIS_CLUSTER_NODES !== undefined) connection.nodes = nodeList(settings.REDIS_CLUSTER_NODES)
  } else {
    unused(['REDIS_CLUSTER_NODES'], 'cluster')
  }
  const sentinelKeys = [
    'REDIS_SENTINELS',
    'REDIS_SENTINEL_MASTER',
    'REDIS_SENTINEL_USERNAME',
    'REDIS_SENTINEL_PASSWORD',
    'REDIS_SENTINEL_PASSWORD_FILE',
  ] as const
  if (settings.REDIS_MODE === 'sentinel') {
    if (settings.REDIS_SENTINELS === undefined) {
      files.problem(
        'REDIS_SENTINELS',
        'the sentinels as host:port,host:port (REDIS_MODE=sentinel)',
        'nothing (not set)',
      )
    } else {
      connection.nodes = nodeList(settings.REDIS_SENTINELS)
    }
    if (settings.REDIS_SENTINEL_MASTER === undefined) {
      files.problem(
        'REDIS_SENTINEL_MASTER',
        'the master name the sentinels monitor (REDIS_MODE=sentinel)',
        'nothing (not set)',
      )
    }
    const password = files.value(
      'REDIS_SENTINEL_PASSWORD',
      settings.REDIS_SENTINEL_PASSWORD,
      settings.REDIS_SENTINEL_PASSWORD_FILE,
      null,
    )
    connection.sentinel = { masterName: settings.REDIS_SENTINEL_MASTER ?? '' }
    if (settings.REDIS_SENTINEL_USERNAME !== undefined) connection.sentinel.username = settings.REDIS_SENTINEL_USERNAME
    if (password !== undefined) connection.sentinel.password = password
  } else {
    unused(sentinelKeys, 'sentinel')
  }

  if (files.problems.length > 0) throw new ConfigError(files.problems)
  return connection
}

/** A summary safe to log and to print in errors: topology, nodes, TLS and user, never a password. */
export function describeRedis(connection: RedisConnection): string {
  const scheme = connection.tls === null ? 'redis' : 'rediss'
  const nodes = connection.nodes.map((n) => `${n.host}:${n.port}`).join(',')
  const user = connection.username === undefined ? '' : ` as ACL user ${JSON.stringify(connection.username)}`
  const target =
    connection.mode === 'sentinel'
      ? `master ${JSON.stringify(connection.sentinel?.masterName)} via sentinels ${nodes}`
      : nodes
  return `${connection.mode} ${scheme}://${target}${user}`
}
