import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError, KafkaEnv, describeKafkaSecurity, loadConfig, resolveKafkaSecurity } from '../src/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'kafka-security-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

// Not real key material: the resolver checks PEM block labels only; TLS itself is exercised against local-kafka.
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n'
const PASSWORD = 'pa55-word-of-the-day'

function resolve(env: Record<string, string>) {
  return resolveKafkaSecurity(loadConfig(KafkaEnv, env))
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

describe('resolveKafkaSecurity', () => {
  it('is plaintext without credentials by default', () => {
    expect(resolve({})).toEqual({ protocol: 'PLAINTEXT', tls: null, sasl: null })
  })

  it('reads the CA, client certificate and key files for SSL', () => {
    const security = resolve({
      KAFKA_SECURITY_PROTOCOL: 'SSL',
      KAFKA_SSL_CA_FILE: file('ca.pem', CERT),
      KAFKA_SSL_CERT_FILE: file('client.pem', CERT),
      KAFKA_SSL_KEY_FILE: file('client.key', KEY),
      KAFKA_SSL_SERVERNAME: 'kafka.internal',
    })
    expect(security).toEqual({
      protocol: 'SSL',
      tls: { ca: CERT, cert: CERT, key: KEY, servername: 'kafka.internal' },
      sasl: null,
    })
  })

  it('uses the system CAs when SSL has no CA file', () => {
    expect(resolve({ KAFKA_SECURITY_PROTOCOL: 'SSL' }).tls).toEqual({})
  })

  it('takes SASL credentials from the environment', () => {
    const security = resolve({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'lookstream',
      KAFKA_SASL_PASSWORD: PASSWORD,
    })
    expect(security.sasl).toEqual({ mechanism: 'SCRAM-SHA-512', username: 'lookstream', password: PASSWORD })
    expect(security.tls).toEqual({})
  })

  it('takes SASL credentials from mounted files, dropping one trailing newline', () => {
    const security = resolve({
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME_FILE: file('username', 'svc-user\n'),
      KAFKA_SASL_PASSWORD_FILE: file('password', `${PASSWORD}\n`),
    })
    expect(security).toEqual({
      protocol: 'SASL_PLAINTEXT',
      tls: null,
      sasl: { mechanism: 'PLAIN', username: 'svc-user', password: PASSWORD },
    })
  })

  it('lists every missing SASL setting at once', () => {
    const err = problems({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' })
    expect(err.problems.map((p) => p.key)).toEqual([
      'KAFKA_SASL_MECHANISM',
      'KAFKA_SASL_USERNAME',
      'KAFKA_SASL_PASSWORD',
    ])
    expect(err.message).toContain(
      'KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE (KAFKA_SECURITY_PROTOCOL is SASL_SSL)',
    )
  })

  it('refuses a password given both directly and in a file, without showing either', () => {
    const err = problems({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: PASSWORD,
      KAFKA_SASL_PASSWORD_FILE: file('password2', 'other-secret'),
    })
    expect(err.problems).toEqual([
      {
        key: 'KAFKA_SASL_PASSWORD',
        expected: 'either KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both',
        given: 'both',
      },
    ])
    expect(err.message).not.toContain(PASSWORD)
    expect(err.message).not.toContain('other-secret')
  })

  it('names an unreadable or empty file and never prints file contents', () => {
    const err = problems({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD_FILE: join(dir, 'missing'),
      KAFKA_SSL_CA_FILE: file('empty.pem', ''),
    })
    expect(err.problems.map((p) => [p.key, p.given])).toEqual([
      ['KAFKA_SSL_CA_FILE', `${JSON.stringify(join(dir, 'empty.pem'))}, which is empty`],
      ['KAFKA_SASL_PASSWORD_FILE', `${JSON.stringify(join(dir, 'missing'))}, which cannot be read (ENOENT)`],
    ])
  })

  it('refuses a password file of several lines', () => {
    const err = problems({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD_FILE: file('two-lines', `${PASSWORD}\nsecond\n`),
    })
    expect(err.problems.map((p) => p.key)).toEqual(['KAFKA_SASL_PASSWORD_FILE'])
    expect(err.message).not.toContain(PASSWORD)
  })

  it('refuses files that are not the PEM they should be', () => {
    const err = problems({
      KAFKA_SECURITY_PROTOCOL: 'SSL',
      KAFKA_SSL_CA_FILE: file('key-as-ca.pem', KEY),
      KAFKA_SSL_CERT_FILE: file('cert.pem', CERT),
      KAFKA_SSL_KEY_FILE: file('cert-as-key.pem', CERT),
    })
    expect(err.problems.map((p) => [p.key, p.expected])).toEqual([
      ['KAFKA_SSL_CA_FILE', 'a PEM file with a CERTIFICATE block'],
      ['KAFKA_SSL_KEY_FILE', 'a PEM file with a PRIVATE KEY block'],
    ])
  })

  it('needs the client certificate and its key together', () => {
    const err = problems({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERT_FILE: file('lonely.pem', CERT) })
    expect(err.problems.map((p) => p.key)).toEqual(['KAFKA_SSL_KEY_FILE'])
  })

  it('refuses TLS or SASL settings the chosen protocol would ignore', () => {
    const err = problems({
      KAFKA_SSL_CA_FILE: file('ca2.pem', CERT),
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_PASSWORD: PASSWORD,
    })
    expect(err.problems.map((p) => p.key)).toEqual(['KAFKA_SSL_CA_FILE', 'KAFKA_SASL_MECHANISM', 'KAFKA_SASL_PASSWORD'])
    expect(err.problems[0]!.expected).toContain('set KAFKA_SECURITY_PROTOCOL to SSL or SASL_SSL')
    expect(err.message).not.toContain(PASSWORD)
  })

  it('describes the security without the password', () => {
    const security = resolve({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256',
      KAFKA_SASL_USERNAME: 'svc',
      KAFKA_SASL_PASSWORD: PASSWORD,
    })
    expect(describeKafkaSecurity(security)).toBe('SASL_SSL, SCRAM-SHA-256 user "svc"')
  })
})
