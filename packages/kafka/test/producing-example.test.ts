import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { HEADERS, TOPICS, decodeMessage } from '@lookstream/events'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createKafka, runConsumer, type ConsumedRecord, type RecordAck } from '../src/index.ts'
import { testBrokers, testLogger, uniqueName, waitFor } from './test-broker.ts'

const EXAMPLE = fileURLToPath(new URL('../../../docs/examples/produce.ts', import.meta.url))

function runExample(brokers: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--conditions=@lookstream/source', EXAMPLE], {
    env: { ...process.env, KAFKA_BROKERS: brokers },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })))
}

// kafkajs 2.2.4 arms a negative setTimeout in its request queue (requestQueue/index.js, scheduleCheckPendingRequests);
// Node warns once per process. Harmless, and not ours to fix; everything else on stderr is a failure.
function unexpectedStderr(stderr: string): string[] {
  const known = /TimeoutNegativeWarning|Timeout duration was set to 1|node --trace-warnings/
  return stderr.split('\n').filter((line) => line.trim() !== '' && !known.test(line))
}

describe('docs/examples/produce.ts', () => {
  it('publishes a valid identify and track that read back with key, headers and messageId', async () => {
    const brokers = testBrokers()
    const result = await runExample(brokers)
    expect(unexpectedStderr(result.stderr)).toEqual([])
    expect(result.code).toBe(0)
    const acks = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as RecordAck & { messageId: string })
    expect(acks.map((ack) => ack.topic)).toEqual([TOPICS.identify, TOPICS.track])

    const kafka = createKafka({ brokers, clientId: 'example-reader', logger: testLogger })
    const found = new Map<string, ConsumedRecord>()
    const runner = await runConsumer({
      kafka,
      groupId: uniqueName('example-reader'),
      topics: [TOPICS.identify, TOPICS.track],
      fromBeginning: true,
      logger: testLogger,
      eachBatch: (batch) => {
        for (const record of batch.records) {
          const ack = acks.find((a) => a.topic === record.topic && a.partition === record.partition)
          if (ack && ack.offset === record.offset) found.set(ack.messageId, record)
          batch.markDone(record)
        }
      },
    })
    onTestFinished(() => runner.stop())
    await waitFor('both example records', () => found.size === 2)

    for (const ack of acks) {
      const record = found.get(ack.messageId)!
      const decoded = decodeMessage(record.value)
      if (!decoded.ok) throw new Error(decoded.errors.join('; '))
      expect(decoded.message.messageId).toBe(ack.messageId)
      expect(record.key?.toString()).toBe('cust_123')
      expect(record.headers[HEADERS.producer]).toBe('billing-example')
      expect(record.headers[HEADERS.schema]).toBe(`${decoded.message.type}.v1`)
    }
    expect(found.get(acks[0]!.messageId)!.headers[HEADERS.destinations]).toBe('segment,braze')
    expect(found.get(acks[1]!.messageId)!.headers[HEADERS.destinations]).toBe('segment')
  })

  it('derives the same messageIds when run again (stable across retries)', async () => {
    const brokers = testBrokers()
    const ids = async () => {
      const { stdout, code } = await runExample(brokers)
      expect(code).toBe(0)
      return stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { messageId: string }).messageId)
    }
    const first = await ids()
    expect(await ids()).toEqual(first)
    expect(first.every((id) => id.length < 100)).toBe(true)
  })
})
