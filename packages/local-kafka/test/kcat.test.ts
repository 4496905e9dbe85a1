import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Admin, type Kafka, type KafkaMessage } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalKafka, type LocalKafka } from '../src/index.ts'
import { testConsumerConfig, testKafka, uniqueName, waitFor } from './support/kafka-client.ts'

const run = promisify(execFile)
const hasKcat = spawnSync('kcat', ['-V']).status === 0

async function kcat(args: string[], input?: Buffer): Promise<Buffer> {
  const child = execFile('kcat', args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 30_000 })
  const out: Buffer[] = []
  child.stdout!.on('data', (b: Buffer) => out.push(b))
  if (input !== undefined) child.stdin!.end(input)
  else child.stdin!.end()
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  if (code !== 0) throw new Error(`kcat ${args.join(' ')} exited with ${code}`)
  return Buffer.concat(out)
}

// Every byte value, so "byte-identical" covers more than text.
const BINARY = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) % 256))

describe.skipIf(!hasKcat)('kcat (librdkafka 2.0.2) against the broker process', () => {
  let broker: LocalKafka
  let kafka: Kafka
  let admin: Admin

  beforeAll(async () => {
    broker = await startLocalKafka({ port: 0 })
    kafka = testKafka(broker.brokers)
    admin = kafka.admin()
    await admin.connect()
  })

  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
  })

  it('lists metadata (-L)', async () => {
    const topic = uniqueName('kcat-meta')
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] })
    const out = await kcat(['-b', broker.brokers, '-L', '-J', '-t', topic])
    const meta = JSON.parse(out.toString()) as {
      brokers: { id: number; name: string }[]
      topics: { topic: string; partitions: { partition: number; leader: number }[] }[]
    }
    expect(meta.brokers).toEqual([{ id: 0, name: broker.brokers }])
    expect(meta.topics[0]!.topic).toBe(topic)
    expect(meta.topics[0]!.partitions.map((p) => [p.partition, p.leader])).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
    ])
  })

  it('produces (-P) and consumes (-C) with keys and headers', async () => {
    const topic = uniqueName('kcat-pc')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const lines = Array.from({ length: 100 }, (_, i) => `key${i}:value ${i}`).join('\n') + '\n'
    await kcat(['-b', broker.brokers, '-P', '-t', topic, '-K', ':', '-H', 'source=kcat', '-p', '0'], Buffer.from(lines))
    const out = await kcat([
      '-b',
      broker.brokers,
      '-C',
      '-t',
      topic,
      '-o',
      'beginning',
      '-e',
      '-q',
      '-f',
      '%o|%k|%s|%h\n',
    ])
    const rows = out.toString().trim().split('\n')
    expect(rows).toHaveLength(100)
    expect(rows[0]).toBe('0|key0|value 0|source=kcat')
    expect(rows[99]).toBe('99|key99|value 99|source=kcat')
  })

  it('reads in kafkajs byte-identical what kcat produced, headers included', async () => {
    const topic = uniqueName('kcat-to-kafkajs')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const dir = mkdtempSync(join(tmpdir(), 'kcat-'))
    const file = join(dir, 'payload.bin')
    writeFileSync(file, BINARY)
    // With a file argument kcat sends the whole file as one message.
    await run('kcat', [
      '-b',
      broker.brokers,
      '-P',
      '-t',
      topic,
      '-p',
      '0',
      '-k',
      'bin-key',
      '-H',
      'h1=v1',
      '-H',
      'h2=',
      file,
    ])
    const consumer = kafka.consumer(testConsumerConfig(uniqueName('g')))
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const seen: KafkaMessage[] = []
    await consumer.run({ eachMessage: ({ message }) => Promise.resolve(void seen.push(message)) })
    await waitFor(() => (seen.length >= 1 ? true : undefined), 20_000, 'the kcat message')
    await consumer.disconnect()
    expect(seen[0]!.key).toEqual(Buffer.from('bin-key'))
    expect(seen[0]!.value!.equals(BINARY)).toBe(true)
    expect(seen[0]!.headers).toEqual({ h1: Buffer.from('v1'), h2: Buffer.from('') })
  })

  it('reads in kcat byte-identical what kafkajs produced, headers included', async () => {
    const topic = uniqueName('kafkajs-to-kcat')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({
      topic,
      messages: [{ key: 'k-ü', value: BINARY, headers: { trace: 'abc', 'lookstream-schema': 'identify.v1' } }],
    })
    await producer.disconnect()
    const value = await kcat(['-b', broker.brokers, '-C', '-t', topic, '-o', '0', '-c', '1', '-e', '-q', '-f', '%s'])
    expect(value.equals(BINARY)).toBe(true)
    const meta = await kcat(['-b', broker.brokers, '-C', '-t', topic, '-o', '0', '-c', '1', '-e', '-q', '-f', '%k|%h'])
    expect(meta.toString()).toBe('k-ü|trace=abc,lookstream-schema=identify.v1')
  })

  it('consumes with librdkafka from a timestamp (ListOffsets by time)', async () => {
    const topic = uniqueName('kcat-ts')
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    const producer = kafka.producer()
    await producer.connect()
    const t = Date.now()
    await producer.send({ topic, messages: [{ value: 'early', timestamp: String(t - 60_000) }] })
    await producer.send({ topic, messages: [{ value: 'late', timestamp: String(t) }] })
    await producer.disconnect()
    const out = await kcat(['-b', broker.brokers, '-C', '-t', topic, '-o', `s@${t - 1000}`, '-e', '-q', '-f', '%s\n'])
    expect(out.toString()).toBe('late\n')
  })
})
