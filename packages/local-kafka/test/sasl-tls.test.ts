import { execFile, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestCertificates, startLocalKafka, type LocalKafka, type TestCertificates } from '../src/index.ts'
import { RawClient } from './support/raw-client.ts'
import { testConsumerConfig, uniqueName } from './support/kafka-client.ts'

const hasKcat = spawnSync('kcat', ['-V']).status === 0
const hasOpenssl = spawnSync('openssl', ['version']).status === 0

const USER = 'lookstream'
const PASSWORD = 'correct horse battery staple'
const SASL_HANDSHAKE = 17
const SASL_AUTHENTICATE = 36
const METADATA = 3

function client(brokers: string, extra: Partial<KafkaConfig>): Kafka {
  return new Kafka({
    brokers: [brokers],
    clientId: 'sasl-tls-test',
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: 10_000,
    retry: { retries: 0 },
    ...extra,
  })
}

async function roundTrip(kafka: Kafka): Promise<string[]> {
  const topic = uniqueName('secured')
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  await admin.disconnect()
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: [{ value: 'one' }, { value: 'two' }] })
  await producer.disconnect()
  const consumer = kafka.consumer(testConsumerConfig(uniqueName('g')))
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const seen: string[] = []
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachMessage: ({ message }) => {
          seen.push(message.value!.toString())
          if (seen.length === 2) resolve()
          return Promise.resolve()
        },
      })
      .catch(reject)
  })
  await consumer.disconnect()
  return seen
}

async function kcat(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('kcat', args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
    child.stdin!.end(input ?? '')
  })
}

describe.skipIf(!hasOpenssl)('local-kafka SASL_SSL listener', () => {
  let certs: TestCertificates
  let broker: LocalKafka
  let ca: string

  const sasl = (mechanism: string, password = PASSWORD, username = USER): Partial<KafkaConfig> => ({
    ssl: { ca: [ca] },
    sasl: { mechanism, username, password } as SASLOptions,
  })

  beforeAll(async () => {
    certs = createTestCertificates()
    ca = readFileSync(certs.caFile, 'utf8')
    broker = await startLocalKafka({
      inMemory: true,
      tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile },
      sasl: { users: { [USER]: PASSWORD, other: 'other-password' } },
    })
  })

  afterAll(async () => {
    await broker?.stop()
    certs?.remove()
  })

  for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512']) {
    it(`kafkajs produces and consumes with ${mechanism.toUpperCase()}`, async () => {
      expect(await roundTrip(client(broker.brokers, sasl(mechanism)))).toEqual(['one', 'two'])
    })

    it(`kafkajs is refused with a wrong ${mechanism.toUpperCase()} password`, async () => {
      const admin = client(broker.brokers, sasl(mechanism, 'wrong password')).admin()
      await expect(admin.connect()).rejects.toMatchObject({ name: 'KafkaJSSASLAuthenticationError' })
    })
  }

  it('refuses an unknown user as it refuses a wrong password', async () => {
    const admin = client(broker.brokers, sasl('scram-sha-256', PASSWORD, 'nobody')).admin()
    await expect(admin.connect()).rejects.toThrow(/invalid credentials with SASL mechanism SCRAM-SHA-256/)
  })

  it('answers SASL_AUTHENTICATION_FAILED (58) on the wire, then closes the connection', async () => {
    const raw = await RawClient.connectTls(broker.port, { ca })
    const hs = await raw.request(SASL_HANDSHAKE, 1, { mechanism: 'PLAIN' })
    expect(hs.body).toEqual({ errorCode: 0, mechanisms: ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] })
    const auth = await raw.request(SASL_AUTHENTICATE, 1, { authBytes: Buffer.from(`\0${USER}\0nope`) })
    expect(auth.body.errorCode).toBe(58)
    expect(auth.body.errorMessage).toBe('Authentication failed: Invalid username or password')
    await raw.whenClosed()
  })

  it('accepts good PLAIN credentials on the wire and then serves requests', async () => {
    const raw = await RawClient.connectTls(broker.port, { ca })
    await raw.request(SASL_HANDSHAKE, 1, { mechanism: 'PLAIN' })
    const auth = await raw.request(SASL_AUTHENTICATE, 1, { authBytes: Buffer.from(`\0${USER}\0${PASSWORD}`) })
    expect(auth.body.errorCode).toBe(0)
    const meta = await raw.request(METADATA, 4, { topics: [], allowAutoTopicCreation: false })
    expect(meta.body.brokers).toEqual([{ nodeId: 0, host: '127.0.0.1', port: broker.port, rack: null }])
    raw.close()
  })

  it('answers UNSUPPORTED_SASL_MECHANISM (33) with the enabled list', async () => {
    const raw = await RawClient.connectTls(broker.port, { ca })
    const hs = await raw.request(SASL_HANDSHAKE, 1, { mechanism: 'GSSAPI' })
    expect(hs.body).toEqual({ errorCode: 33, mechanisms: ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] })
    await raw.whenClosed()
  })

  it('answers ILLEGAL_SASL_STATE (34) to SaslAuthenticate before a handshake', async () => {
    const raw = await RawClient.connectTls(broker.port, { ca })
    const auth = await raw.request(SASL_AUTHENTICATE, 1, { authBytes: Buffer.from(`\0${USER}\0${PASSWORD}`) })
    expect(auth.body.errorCode).toBe(34)
    await raw.whenClosed()
  })

  it('closes a connection that sends a request before authenticating', async () => {
    const raw = await RawClient.connectTls(broker.port, { ca })
    void raw.request(METADATA, 4, { topics: [], allowAutoTopicCreation: false })
    await raw.whenClosed()
    expect(raw.arrivals).toEqual([])
  })

  it('fails a plaintext client cleanly and keeps serving TLS clients', async () => {
    const admin = client(broker.brokers, { sasl: sasl('plain').sasl! }).admin()
    // With retries off kafkajs reports the closed connection as its retry budget running out.
    await expect(admin.connect()).rejects.toThrow(/Closed connection|Connection error|ECONNRESET/)
    expect(await roundTrip(client(broker.brokers, sasl('scram-sha-512')))).toEqual(['one', 'two'])
  })

  it('fails a client that does not trust the broker certificate', async () => {
    const admin = client(broker.brokers, {
      ssl: { ca: [readFileSync(certs.otherCaFile, 'utf8')] },
      sasl: sasl('plain').sasl!,
    }).admin()
    await expect(admin.connect()).rejects.toThrow(/certificate/i)
  })

  describe.skipIf(!hasKcat)('kcat (librdkafka, security.protocol=SASL_SSL)', () => {
    const kcatSecurity = (mechanism: string, password = PASSWORD) => [
      '-X',
      'security.protocol=SASL_SSL',
      '-X',
      `sasl.mechanisms=${mechanism}`,
      '-X',
      `sasl.username=${USER}`,
      '-X',
      `sasl.password=${password}`,
      '-X',
      `ssl.ca.location=${certs.caFile}`,
    ]

    for (const mechanism of ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']) {
      it(`produces and consumes with ${mechanism}`, async () => {
        const topic = uniqueName('kcat-secured')
        const produced = await kcat(
          ['-b', broker.brokers, ...kcatSecurity(mechanism), '-P', '-t', topic, '-X', 'topic.request.required.acks=-1'],
          'alpha\nbeta\n',
        )
        expect(produced.code, produced.stderr).toBe(0)
        const consumed = await kcat(['-b', broker.brokers, ...kcatSecurity(mechanism), '-C', '-t', topic, '-e', '-q'])
        expect(consumed.code, consumed.stderr).toBe(0)
        expect(consumed.stdout.split('\n').filter(Boolean)).toEqual(['alpha', 'beta'])
      })
    }

    it('is refused with a wrong password', async () => {
      const out = await kcat(['-b', broker.brokers, ...kcatSecurity('SCRAM-SHA-256', 'wrong'), '-L', '-m', '2'])
      expect(out.code).not.toBe(0)
      expect(out.stderr).toMatch(/Authentication failed|SASL authentication error/i)
    })
  })
})

describe.skipIf(!hasOpenssl)('local-kafka SSL listener with client certificates', () => {
  let certs: TestCertificates
  let broker: LocalKafka

  beforeAll(async () => {
    certs = createTestCertificates()
    broker = await startLocalKafka({
      inMemory: true,
      tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, clientCaFile: certs.caFile },
    })
  })

  afterAll(async () => {
    await broker?.stop()
    certs?.remove()
  })

  it('serves a client presenting a certificate signed by the CA', async () => {
    const kafka = client(broker.brokers, {
      ssl: {
        ca: [readFileSync(certs.caFile, 'utf8')],
        cert: readFileSync(certs.clientCertFile, 'utf8'),
        key: readFileSync(certs.clientKeyFile, 'utf8'),
      },
    })
    expect(await roundTrip(kafka)).toEqual(['one', 'two'])
  })

  it('refuses a client without a certificate', async () => {
    const admin = client(broker.brokers, { ssl: { ca: [readFileSync(certs.caFile, 'utf8')] } }).admin()
    await expect(admin.connect()).rejects.toThrow()
  })
})
