import { Type } from 'typebox'
import { describe, expect, it } from 'vitest'
import { ConfigError, HttpEnv, KafkaEnv, LogEnv, RedisEnv, loadConfig, loadConfigOrExit } from '../src/index.ts'

const Schema = Type.Object({
  ...KafkaEnv.properties,
  ...RedisEnv.properties,
  ...HttpEnv.properties,
  ...LogEnv.properties,
  WORKERS: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
  RATIO: Type.Number({ default: 0.5 }),
  DRY_RUN: Type.Boolean({ default: false }),
  ACTION_HUB_SECRET: Type.String({ minLength: 32 }),
  CONNECTIONS: Type.Optional(Type.Record(Type.String(), Type.Object({ writeKey: Type.String() }))),
})

const valid = { PORT: '8080', ACTION_HUB_SECRET: 'x'.repeat(32) }

function problemsOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(Schema, env)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('loadConfig accepted an invalid environment')
}

describe('loadConfig', () => {
  it('applies defaults for keys that are not set', () => {
    const config = loadConfig(Schema, valid)
    expect(config).toEqual({
      KAFKA_BROKERS: '127.0.0.1:9092',
      KAFKA_SECURITY_PROTOCOL: 'PLAINTEXT',
      KAFKA_TOPICS_MODE: 'create',
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_MODE: 'standalone',
      HOST: '127.0.0.1',
      PORT: 8080,
      SHUTDOWN_TIMEOUT_MS: 10_000,
      LOG_LEVEL: 'info',
      WORKERS: 4,
      RATIO: 0.5,
      DRY_RUN: false,
      ACTION_HUB_SECRET: 'x'.repeat(32),
    })
  })

  it('converts strings to integers, numbers, booleans and JSON values', () => {
    const config = loadConfig(Schema, {
      ...valid,
      WORKERS: ' 12 ',
      RATIO: '1.5e-1',
      DRY_RUN: 'TRUE',
      LOG_LEVEL: 'debug',
      CONNECTIONS: '{"eu":{"writeKey":"k"}}',
    })
    expect(config.WORKERS).toBe(12)
    expect(config.RATIO).toBe(0.15)
    expect(config.DRY_RUN).toBe(true)
    expect(config.LOG_LEVEL).toBe('debug')
    expect(config.CONNECTIONS).toEqual({ eu: { writeKey: 'k' } })
    expect(loadConfig(Schema, { ...valid, DRY_RUN: '1' }).DRY_RUN).toBe(true)
    expect(loadConfig(Schema, { ...valid, DRY_RUN: '0' }).DRY_RUN).toBe(false)
    expect(loadConfig(Schema, { ...valid, DRY_RUN: 'false' }).DRY_RUN).toBe(false)
  })

  it('ignores environment keys the schema does not name', () => {
    const config = loadConfig(Schema, { ...valid, PATH: '/usr/bin', UNRELATED_TOKEN: 'abc' })
    expect(config).not.toHaveProperty('PATH')
    expect(config).not.toHaveProperty('UNRELATED_TOKEN')
  })

  it('treats an empty string as not set', () => {
    expect(loadConfig(Schema, { ...valid, WORKERS: '' }).WORKERS).toBe(4)
    const err = problemsOf({ PORT: '', ACTION_HUB_SECRET: 'x'.repeat(32) })
    expect(err.problems.map((p) => p.key)).toEqual(['PORT'])
  })

  it('reads process.env when no env is passed', () => {
    const Only = Type.Object({ LOOKSTREAM_TEST_ONLY_VALUE: Type.Integer() })
    process.env.LOOKSTREAM_TEST_ONLY_VALUE = '7'
    try {
      expect(loadConfig(Only)).toEqual({ LOOKSTREAM_TEST_ONLY_VALUE: 7 })
    } finally {
      delete process.env.LOOKSTREAM_TEST_ONLY_VALUE
    }
  })
})

describe('loadConfig error reporting', () => {
  it('lists every missing required key in one error', () => {
    const err = problemsOf({})
    expect(err.code).toBe('LS_CONFIG_INVALID')
    expect(err.problems.map((p) => p.key)).toEqual(['PORT', 'ACTION_HUB_SECRET'])
    expect(err.message).toContain('PORT: expected an integer between 0 and 65535, got nothing (not set)')
    expect(err.message).toContain(
      'ACTION_HUB_SECRET: expected a string of at least 32 characters, got nothing (not set)',
    )
    expect(err.message).toMatch(/^invalid configuration: 2 settings to fix\n/)
  })

  it('lists every invalid key with what was expected and what was given', () => {
    const err = problemsOf({
      ...valid,
      PORT: '70000',
      WORKERS: '2.5',
      RATIO: 'half',
      DRY_RUN: 'yes',
      LOG_LEVEL: 'verbose',
      KAFKA_BROKERS: 'broker-without-port',
      REDIS_URL: 'http://127.0.0.1:6379',
    })
    expect(err.problems).toEqual([
      {
        key: 'KAFKA_BROKERS',
        expected: 'a string (comma-separated host:port list)',
        given: '"broker-without-port"',
      },
      {
        key: 'REDIS_URL',
        expected: 'a string (a redis:// or rediss:// URL)',
        given: '"http://127.0.0.1:6379"',
      },
      { key: 'PORT', expected: 'an integer between 0 and 65535', given: '"70000"' },
      { key: 'LOG_LEVEL', expected: 'one of fatal, error, warn, info, debug, trace, silent', given: '"verbose"' },
      { key: 'WORKERS', expected: 'an integer between 1 and 64', given: '"2.5"' },
      { key: 'RATIO', expected: 'a number', given: '"half"' },
      { key: 'DRY_RUN', expected: 'a boolean (true, false, 1 or 0)', given: '"yes"' },
    ])
    expect(err.message.split('\n')).toHaveLength(8)
  })

  it('reports missing and invalid keys together', () => {
    const err = problemsOf({ WORKERS: 'many' })
    expect(err.problems.map((p) => p.key)).toEqual(['PORT', 'WORKERS', 'ACTION_HUB_SECRET'])
  })

  it('never prints the value of a key whose name suggests a secret', () => {
    const secretish = Type.Object({
      ACTION_HUB_SECRET: Type.String({ minLength: 32 }),
      SEGMENT_WRITE_KEY: Type.String({ pattern: '^[A-Za-z0-9]+$' }),
      API_TOKEN: Type.Integer(),
      DB_PASSWORD: Type.String({ maxLength: 3 }),
      GCP_CREDENTIALS: Type.Boolean(),
    })
    const env = {
      ACTION_HUB_SECRET: 'short-secret-value',
      SEGMENT_WRITE_KEY: 'wk-with-dash-value',
      API_TOKEN: 'token-value-123',
      DB_PASSWORD: 'hunter2-password',
      GCP_CREDENTIALS: 'credential-value',
    }
    let err: unknown
    try {
      loadConfig(secretish, env)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    const { message, problems } = err as ConfigError
    expect(problems.map((p) => p.key)).toEqual(Object.keys(env))
    for (const value of Object.values(env)) expect(message).not.toContain(value)
    expect(message).toContain(
      'ACTION_HUB_SECRET: expected a string of at least 32 characters, got a value of 18 characters (not shown: the name suggests a secret)',
    )
  })

  it('does not print JSON values, which may hold credentials, but says where they are wrong', () => {
    const err = problemsOf({ ...valid, CONNECTIONS: '{"eu":{"writeKey":42}}' })
    expect(err.problems).toHaveLength(1)
    expect(err.problems[0]?.key).toBe('CONNECTIONS')
    expect(err.message).not.toContain('42')
    expect(err.problems[0]?.expected).toContain('/eu/writeKey')
    expect(err.problems[0]?.given).toBe('a value of 22 characters (not shown: JSON)')

    const broken = problemsOf({ ...valid, CONNECTIONS: '{"eu":' })
    expect(broken.problems[0]?.expected).toBe('a JSON object (the value is not valid JSON)')
  })

  it('shows the pattern when a string has no description', () => {
    const Named = Type.Object({ NAME: Type.String({ pattern: '^[a-z]+$' }) })
    expect(() => loadConfig(Named, { NAME: 'A1' })).toThrow('NAME: expected a string matching /^[a-z]+$/, got "A1"')
  })

  it('truncates very long values', () => {
    const err = problemsOf({ ...valid, RATIO: 'x'.repeat(500) })
    expect(err.problems[0]?.given).toMatch(/…" \(500 characters\)$/)
    expect(err.message.length).toBeLessThan(300)
  })
})

describe('loadConfigOrExit', () => {
  it('prints the error to stderr and exits 1', () => {
    let written = ''
    let exitCode: number | undefined
    const io = {
      stderr: { write: (text: string) => (written += text) },
      exit: (code: number): never => {
        exitCode = code
        throw new Error('exited')
      },
    }
    expect(() => loadConfigOrExit(Schema, {}, io)).toThrow('exited')
    expect(exitCode).toBe(1)
    expect(written).toMatch(/^LS_CONFIG_INVALID: invalid configuration: 2 settings to fix\n {2}PORT: /)
  })

  it('returns the config when it is valid', () => {
    const io = {
      stderr: { write: () => true },
      exit: (): never => {
        throw new Error('must not exit')
      },
    }
    expect(loadConfigOrExit(Schema, valid, io).PORT).toBe(8080)
  })
})
