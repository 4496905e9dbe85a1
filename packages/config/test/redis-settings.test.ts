import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError, RedisEnv, describeRedis, loadConfig, resolveRedisSettings } from '../src/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'redis-settings-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
const SECRET = 'redis-secret-value'

function resolve(env: Record<string, string>) {
  return resolveRedisSettings(loadConfig(RedisEnv, env))
}

function problems(env: Record<string, string>): ConfigError {
  try {
    resolve(env)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('the settings were accepted')
}

describe('resolveRedisSettings', () => {
  it('is a plain local server by default', () => {
    expect(resolve({})).toEqual({ mode: 'standalone', nodes: [{ host: '127.0.0.1', port: 6379 }], db: 0, tls: null })
  })

  it('takes TLS from rediss://, the CA from a file and the password from a mounted file', () => {
    const ca = join(dir, 'ca.pem')
    const password = join(dir, 'password')
    writeFileSync(ca, CERT)
    writeFileSync(password, `${SECRET}\n`)
    expect(
      resolve({
        REDIS_URL: 'rediss://redis.internal:6380/2',
        REDIS_TLS_CA_FILE: ca,
        REDIS_USERNAME: 'svc',
        REDIS_PASSWORD_FILE: password,
      }),
    ).toEqual({
      mode: 'standalone',
      nodes: [{ host: 'redis.internal', port: 6380 }],
      db: 2,
      tls: { ca: CERT },
      username: 'svc',
      password: SECRET,
    })
  })

  it('reads credentials from the URL and never shows them', () => {
    const connection = resolve({ REDIS_URL: `redis://svc:${encodeURIComponent(SECRET)}@10.0.0.5:6379` })
    expect(connection.password).toBe(SECRET)
    expect(describeRedis(connection)).toBe('standalone redis://10.0.0.5:6379 as ACL user "svc"')
  })

  it('takes cluster seed nodes and sentinels', () => {
    expect(resolve({ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: 'a:7000,b:7001' }).nodes).toEqual([
      { host: 'a', port: 7000 },
      { host: 'b', port: 7001 },
    ])
    const sentinel = resolve({ REDIS_MODE: 'sentinel', REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'main' })
    expect(sentinel.sentinel).toEqual({ masterName: 'main' })
    expect(describeRedis(sentinel)).toBe('sentinel redis://master "main" via sentinels s1:26379')
  })

  it('lists every conflicting or missing setting, without printing secrets', () => {
    const err = problems({
      REDIS_URL: `redis://u:${SECRET}@h:6379/1`,
      REDIS_PASSWORD: 'other',
      REDIS_TLS_CA_FILE: '/nowhere.pem',
      REDIS_MODE: 'cluster',
      REDIS_SENTINELS: 's:1',
    })
    expect(err.problems.map((p) => p.key)).toEqual([
      'REDIS_URL',
      'REDIS_PASSWORD',
      'REDIS_TLS_CA_FILE',
      'REDIS_SENTINELS',
    ])
    expect(err.message).not.toContain(SECRET)
    expect(err.message).toContain('use rediss:// for TLS')
  })

  it('needs the master name and the sentinels in sentinel mode', () => {
    expect(problems({ REDIS_MODE: 'sentinel' }).problems.map((p) => p.key)).toEqual([
      'REDIS_SENTINELS',
      'REDIS_SENTINEL_MASTER',
    ])
  })
})
