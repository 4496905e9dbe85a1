import { HEADERS } from '@lookstream/events'
import { createKafka, createProducer, ensureTopics, runConsumer, type ConsumedRecord } from '@lookstream/kafka'
import { loadLocalKafka, startLocalKafkaTracked, waitFor, type LocalKafka } from '@lookstream/testing'
import { randomUUID } from 'node:crypto'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { matches, parseTime, toEntry } from '../src/cli/dlq-filter.ts'
import { runDlqCommand } from '../src/cli/dlq.ts'
import { RUNTIME_HEADERS } from '../src/failure-headers.ts'

const silent = pino({ level: 'silent' })

describe('dlq filters', () => {
  const now = Date.parse('2026-11-22T12:00:00Z')
  it('parses ISO times and durations back from now', () => {
    expect(parseTime('2h', now)).toBe(now - 7_200_000)
    expect(parseTime('30m', now)).toBe(now - 1_800_000)
    expect(parseTime('2026-11-22T10:00:00Z', now)).toBe(Date.parse('2026-11-22T10:00:00Z'))
    expect(() => parseTime('yesterday', now)).toThrow(/not a time/)
  })

  it('matches by error code or message fragment and by last-attempt time', () => {
    const entry = toEntry({
      partition: 0,
      offset: '4',
      value: Buffer.from('{"messageId":"m-1"}'),
      headers: {
        [RUNTIME_HEADERS.errorCode]: 'LS_DEST_PERMANENT',
        [HEADERS.error]: 'HTTP 400: event exceeds the limit',
        [HEADERS.lastAttemptAt]: '2026-11-22T11:00:00.000Z',
      },
    })
    expect(entry.messageId).toBe('m-1')
    expect(matches(entry, { reason: 'ls_dest_permanent' })).toBe(true)
    expect(matches(entry, { reason: 'exceeds' })).toBe(true)
    expect(matches(entry, { reason: 'LS_DEST_AUTH' })).toBe(false)
    expect(matches(entry, { since: now - 2 * 3_600_000 })).toBe(true)
    expect(matches(entry, { since: now - 1_800_000 })).toBe(false)
    expect(matches(entry, { until: now - 1_800_000 })).toBe(true)
  })
})

describe('dlq command against a broker', () => {
  let kafka: LocalKafka

  beforeAll(async () => {
    const loaded = await loadLocalKafka()
    if ('unavailable' in loaded) throw new Error(loaded.unavailable)
    kafka = await startLocalKafkaTracked(loaded.start, { inMemory: true, initialRebalanceDelayMs: 0 })
  }, 60_000)

  afterAll(async () => {
    await kafka.stop()
  })

  it('lists dead-lettered messages with reasons and replays the filtered ones to their original topic', async () => {
    const client = createKafka({ brokers: kafka.brokers, clientId: 'dlq-test', logger: silent })
    await ensureTopics(client, [
      { topic: 'lookstream.dlq.segment', numPartitions: 2 },
      { topic: 'lookstream.identify.v1', numPartitions: 2 },
    ])
    const producer = await createProducer(client)
    const dead = (id: string, code: string, error: string) =>
      producer.send({
        topic: 'lookstream.dlq.segment',
        key: id,
        value: JSON.stringify({ type: 'identify', messageId: id }),
        headers: {
          [HEADERS.destinations]: 'segment',
          [HEADERS.error]: error,
          [HEADERS.errorClass]: 'permanent',
          [RUNTIME_HEADERS.errorCode]: code,
          [HEADERS.attempts]: '1',
          [HEADERS.originalTopic]: 'lookstream.identify.v1',
          [HEADERS.originalPartition]: '0',
          [HEADERS.originalOffset]: '7',
          [HEADERS.firstAttemptAt]: new Date().toISOString(),
          [HEADERS.lastAttemptAt]: new Date().toISOString(),
        },
      })
    await dead('a', 'LS_DEST_ITEM_TOO_LARGE', 'item is 40000 bytes, over the 32768-byte limit per event')
    await dead('b', 'LS_DEST_PERMANENT', 'HTTP 400: bad')
    await dead('c', 'LS_DEST_ITEM_TOO_LARGE', 'item is 50000 bytes, over the 32768-byte limit per event')
    await producer.close()

    const out: string[] = []
    const err: string[] = []
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }
    const env = { KAFKA_BROKERS: kafka.brokers }
    expect(await runDlqCommand(['list', '--destination', 'segment', '--json'], io, env)).toBe(0)
    expect(out.map((l) => (JSON.parse(l) as { messageId: string }).messageId).sort()).toEqual(['a', 'b', 'c'])
    expect(err.join('\n')).toMatch(/2 {2}LS_DEST_ITEM_TOO_LARGE/)

    out.length = 0
    err.length = 0
    const args = ['replay', '--destination', 'segment', '--reason', 'LS_DEST_ITEM_TOO_LARGE', '--since', '1h']
    expect(await runDlqCommand(args, io, env)).toBe(0)
    expect(err.at(-1)).toBe('replayed 2/2 to their original topics')

    const replayed: ConsumedRecord[] = []
    const reader = await runConsumer({
      kafka: client,
      groupId: `reader-${randomUUID()}`,
      topics: ['lookstream.identify.v1'],
      fromBeginning: true,
      logger: silent,
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      eachBatch: (batch) => {
        replayed.push(...batch.records)
        return Promise.resolve()
      },
    })
    try {
      await waitFor(() => replayed.length >= 2, { timeoutMs: 20_000, message: 'replayed records' })
    } finally {
      await reader.stop()
    }
    expect(replayed.map((r) => r.key?.toString()).sort()).toEqual(['a', 'c'])
    for (const record of replayed) {
      expect(record.headers[RUNTIME_HEADERS.replayedAt]).toBeDefined()
      expect(record.headers[HEADERS.error]).toBeUndefined()
      expect(record.headers[HEADERS.destinations]).toBe('segment')
    }
  }, 90_000)

  it('refuses an unknown destination with the usage', async () => {
    const err: string[] = []
    const code = await runDlqCommand(['list', '--destination', 'nope'], { out: () => {}, err: (l) => err.push(l) })
    expect(code).toBe(2)
    expect(err.join('\n')).toMatch(/--destination must be one of segment, braze/)
  })
})
