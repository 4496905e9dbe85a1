import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { startLocalKafka, type LocalKafka } from '../src/index.ts'
import { testKafka, uniqueName, waitFor } from './support/kafka-client.ts'

const BIN = fileURLToPath(new URL('../bin/local-kafka.js', import.meta.url))
const INDEX = new URL('../src/index.ts', import.meta.url).href

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('broker CLI modes', () => {
  const brokers: LocalKafka[] = []
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((b) => b.stop()))
  })

  async function start(opts: Parameters<typeof startLocalKafka>[0]): Promise<LocalKafka> {
    const b = await startLocalKafka(opts)
    brokers.push(b)
    return b
  }

  async function produce(b: LocalKafka, topic: string, values: string[]): Promise<void> {
    const producer = testKafka(b.brokers).producer()
    await producer.connect()
    for (const value of values) await producer.send({ topic, acks: -1, messages: [{ value }] })
    await producer.disconnect()
  }

  async function offsets(b: LocalKafka, topic: string): Promise<{ low: string; high: string }> {
    const admin = testKafka(b.brokers).admin()
    await admin.connect()
    try {
      const [o] = await admin.fetchTopicOffsets(topic)
      return { low: o!.low, high: o!.high }
    } finally {
      await admin.disconnect()
    }
  }

  it('prints exactly the listening line on stdout and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, '--port', '0', '--in-memory', '--log-level', 'silent'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      await waitFor(() => (stdout.includes('\n') ? true : undefined), 20_000, 'the listening line')
      expect(stdout).toMatch(/^local-kafka listening on 127\.0\.0\.1:(\d+)\n$/)
      expect(Number(/:(\d+)/.exec(stdout)![1])).toBeGreaterThan(0)
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('keeps nothing across restarts in --in-memory mode', async () => {
    const b = await start({ port: 0, inMemory: true })
    expect(b.dataDir).toBeUndefined()
    const topic = uniqueName('mem')
    await produce(b, topic, ['a', 'b'])
    expect(await offsets(b, topic)).toEqual({ low: '0', high: '2' })
    await b.stop()
    const again = await start({ port: 0, inMemory: true })
    const admin = testKafka(again.brokers).admin()
    await admin.connect()
    expect(await admin.listTopics()).not.toContain(topic)
    await admin.disconnect()
  })

  it('acknowledges produces with --fsync and keeps them across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lk-fsync-'))
    const b = await start({ port: 0, dataDir, fsync: true })
    const topic = uniqueName('fsync')
    await produce(b, topic, ['1', '2', '3'])
    await b.stop()
    const again = await start({ port: 0, dataDir })
    expect(await offsets(again, topic)).toEqual({ low: '0', high: '3' })
  })

  it('deletes old segments by --retention-bytes and advances the log start offset', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lk-retention-'))
    const b = await start({ port: 0, dataDir, segmentBytes: 1024, retentionBytes: 2048, retentionCheckMs: 100 })
    const topic = uniqueName('retention')
    await produce(
      b,
      topic,
      Array.from({ length: 40 }, (_, i) => `value-${i}-`.padEnd(200, 'x')),
    )
    // Retention is done when its invariant holds on disk: the segments after the oldest stay under the limit.
    const partitionDir = join(dataDir, 'topics', topic, '0')
    await waitFor(
      () => {
        // A segment retention deletes between the listing and its stat is gone: look again at the next poll.
        const sizes = readdirSync(partitionDir)
          .filter((f) => f.endsWith('.log'))
          .sort()
          .map((f) => statSync(join(partitionDir, f), { throwIfNoEntry: false })?.size)
        if (sizes.includes(undefined)) return undefined
        return sizes.slice(1).reduce((n: number, x) => n + x!, 0) < 2048 ? true : undefined
      },
      15_000,
      'retention to delete old segments',
    )
    const after = await offsets(b, topic)
    expect(Number(after.low)).toBeGreaterThan(0)
    expect(after.high).toBe('40')
    const segments = readdirSync(partitionDir).filter((f) => f.endsWith('.log'))
    expect(segments.length).toBeLessThanOrEqual(4)
    // Consumers from the beginning start at the new log start offset.
    const consumer = testKafka(b.brokers).consumer({
      groupId: uniqueName('g'),
      maxWaitTimeInMs: 200,
      heartbeatInterval: 300,
    })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const seen: string[] = []
    await consumer.run({ eachMessage: ({ message }) => Promise.resolve(void seen.push(message.offset)) })
    await waitFor(() => (seen.length >= 40 - Number(after.low) ? true : undefined), 15_000, 'the retained messages')
    await consumer.disconnect()
    expect(seen[0]).toBe(after.low)
  })

  it('stops the broker when the process that started it dies without calling stop()', async () => {
    const script = `
      const { startLocalKafka } = await import(${JSON.stringify(INDEX)})
      const kafka = await startLocalKafka({ port: 0, inMemory: true })
      process.stdout.write(String(kafka.pid) + '\\n')
      process.kill(process.pid, 'SIGKILL')
    `
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    parent.stdout.on('data', (b: Buffer) => (out += b.toString()))
    await new Promise((resolve) => parent.on('exit', resolve))
    const pid = Number(out.trim())
    expect(pid).toBeGreaterThan(0)
    try {
      await waitFor(() => (isAlive(pid) ? undefined : true), 15_000, 'the orphaned broker to exit')
    } finally {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL')
    }
  })
})
