import { HEADERS } from '@lookstream/events'
import {
  createKafka,
  createProducer,
  ensureTopics,
  runConsumer,
  type ConsumedRecord,
  type KafkaClient,
  type LookstreamProducer,
} from '@lookstream/kafka'
import { loadLocalKafka, startLocalKafkaTracked, waitFor, type LocalKafka } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { randomUUID } from 'node:crypto'
import { pino } from 'pino'
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest'
import { matches, parseTime, toEntry } from '../src/cli/dlq-filter.ts'
import { replayClaimKey, runDlqCommand } from '../src/cli/dlq.ts'
import { Dedupe } from '../src/dedupe.ts'
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

  it('matches by error code or message fragment, send id, message id and dead-letter time', () => {
    const entry = toEntry({
      partition: 0,
      offset: '4',
      value: Buffer.from('{"messageId":"m-1","context":{"lookstream":{"sendId":"send-9"}}}'),
      headers: {
        [RUNTIME_HEADERS.errorCode]: 'LS_DEST_PERMANENT',
        [HEADERS.error]: 'HTTP 400: event exceeds the limit',
        [HEADERS.lastAttemptAt]: '2026-11-22T11:00:00.000Z',
      },
    })
    expect(entry.messageId).toBe('m-1')
    expect(entry.sendId).toBe('send-9')
    expect(matches(entry, { reason: 'ls_dest_permanent' })).toBe(true)
    expect(matches(entry, { reason: 'exceeds' })).toBe(true)
    expect(matches(entry, { reason: 'LS_DEST_AUTH' })).toBe(false)
    expect(matches(entry, { since: now - 2 * 3_600_000 })).toBe(true)
    expect(matches(entry, { since: now - 1_800_000 })).toBe(false)
    expect(matches(entry, { until: now - 1_800_000 })).toBe(true)
    expect(matches(entry, { sendId: 'send-9' })).toBe(true)
    expect(matches(entry, { sendId: 'send-8' })).toBe(false)
    expect(matches(entry, { messageIds: new Set(['m-0', 'm-1']) })).toBe(true)
    expect(matches(entry, { messageIds: new Set(['m-0']) })).toBe(false)
  })

  it('prefers the send id header, and falls back to the record timestamp without a last-attempt header', () => {
    const entry = toEntry({
      partition: 1,
      offset: '0',
      value: Buffer.from('not json'),
      headers: { [HEADERS.sendId]: 'send-1' },
      timestamp: String(now),
    })
    expect(entry).toMatchObject({ sendId: 'send-1', messageId: undefined, deadLetteredAt: now })
    expect(matches(entry, { messageIds: new Set(['x']) })).toBe(false)
  })
})

describe('dlq command against a broker', () => {
  const DLQ = 'lookstream.dlq.segment'
  const ORIGINAL = 'lookstream.identify.v1'
  let kafka: LocalKafka
  let client: KafkaClient
  let producer: LookstreamProducer
  let redis: Redis
  let env: Record<string, string>

  beforeAll(async () => {
    const loaded = await loadLocalKafka()
    if ('unavailable' in loaded) throw new Error(loaded.unavailable)
    kafka = await startLocalKafkaTracked(loaded.start, { inMemory: true, initialRebalanceDelayMs: 0 })
    client = createKafka({ brokers: kafka.brokers, clientId: 'dlq-test', logger: silent })
    producer = await createProducer(client)
    redis = new Redis(inject('redisUrl'))
    env = { KAFKA_BROKERS: kafka.brokers, REDIS_URL: inject('redisUrl') }
  }, 60_000)

  afterAll(async () => {
    await producer?.close()
    await redis?.quit()
    await kafka?.stop()
  })

  beforeEach(async () => {
    // Each test starts with an empty DLQ and original topic.
    const admin = client.admin()
    await admin.connect()
    try {
      const existing = await admin.listTopics()
      const stale = [DLQ, ORIGINAL].filter((topic) => existing.includes(topic))
      if (stale.length > 0) await admin.deleteTopics({ topics: stale })
      await waitFor(async () => !(await admin.listTopics()).some((topic) => stale.includes(topic)), {
        message: 'topics deleted',
      })
    } finally {
      await admin.disconnect()
    }
    await ensureTopics(client, [
      { topic: DLQ, numPartitions: 2 },
      { topic: ORIGINAL, numPartitions: 2 },
    ])
  })

  interface Dead {
    id: string
    code?: string
    error?: string
    sendId?: string
    lastAttemptAt?: Date
    padding?: number
  }

  const dead = ({ id, code = 'LS_DEST_PERMANENT', error = 'HTTP 400: bad', sendId, lastAttemptAt, padding }: Dead) =>
    producer.send({
      topic: DLQ,
      key: id,
      value: JSON.stringify({ type: 'identify', messageId: id, ...(padding ? { pad: 'x'.repeat(padding) } : {}) }),
      headers: {
        // Routed to two destinations; the replay addresses only the one whose dead letter it is.
        [HEADERS.destinations]: 'segment,braze',
        ...(sendId === undefined ? {} : { [HEADERS.sendId]: sendId }),
        [HEADERS.error]: error,
        [HEADERS.errorClass]: 'permanent',
        [RUNTIME_HEADERS.errorCode]: code,
        [HEADERS.attempts]: '1',
        [HEADERS.originalTopic]: ORIGINAL,
        [HEADERS.originalPartition]: '0',
        [HEADERS.originalOffset]: '7',
        [HEADERS.firstAttemptAt]: (lastAttemptAt ?? new Date()).toISOString(),
        [HEADERS.lastAttemptAt]: (lastAttemptAt ?? new Date()).toISOString(),
      },
    })

  async function run(args: string[]) {
    const out: string[] = []
    const err: string[] = []
    const code = await runDlqCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, env)
    return { code, out, err, json: () => out.map((l) => JSON.parse(l) as { messageId: string; action?: string }) }
  }

  async function publishedToOriginal(): Promise<number> {
    const admin = client.admin()
    await admin.connect()
    try {
      return (await admin.fetchTopicOffsets(ORIGINAL)).reduce((sum, p) => sum + Number(p.high), 0)
    } finally {
      await admin.disconnect()
    }
  }

  async function readOriginal(count: number): Promise<ConsumedRecord[]> {
    const records: ConsumedRecord[] = []
    const reader = await runConsumer({
      kafka: client,
      groupId: `reader-${randomUUID()}`,
      topics: [ORIGINAL],
      fromBeginning: true,
      logger: silent,
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      eachBatch: (batch) => {
        records.push(...batch.records)
        return Promise.resolve()
      },
    })
    try {
      await waitFor(() => records.length >= count, { timeoutMs: 20_000, message: `${count} records` })
    } finally {
      await reader.stop()
    }
    return records
  }

  it('lists dead-lettered messages with reasons and replays the filtered ones to their original topic', async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    await dead({ id: a, code: 'LS_DEST_ITEM_TOO_LARGE', error: 'item is 40000 bytes, over the 32768-byte limit' })
    await dead({ id: b })
    await dead({ id: c, code: 'LS_DEST_ITEM_TOO_LARGE', error: 'item is 50000 bytes, over the 32768-byte limit' })

    const list = await run(['list', '--destination', 'segment', '--json'])
    expect(list.code).toBe(0)
    expect(
      list
        .json()
        .map((e) => e.messageId)
        .sort(),
    ).toEqual([a, b, c].sort())
    expect(list.err.join('\n')).toMatch(/2 {2}LS_DEST_ITEM_TOO_LARGE/)
    expect(list.err.join('\n')).toMatch(/lookstream\.dlq\.segment: read 3\/3 \(100%\), 3 match/)

    const args = ['replay', '--destination', 'segment', '--reason', 'LS_DEST_ITEM_TOO_LARGE', '--since', '1h']
    const replay = await run(args)
    expect(replay.code).toBe(0)
    expect(replay.err.at(-1)).toBe('replayed 2 of 2 matching to their original topics')

    const replayed = await readOriginal(2)
    expect(replayed.map((r) => r.key?.toString()).sort()).toEqual([a, c].sort())
    for (const record of replayed) {
      expect(record.headers[RUNTIME_HEADERS.replayedAt]).toBeDefined()
      expect(record.headers[HEADERS.error]).toBeUndefined()
      expect(record.headers[HEADERS.destinations]).toBe('segment')
    }
  }, 90_000)

  it('filters by send id, message id and time', async () => {
    const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()]
    await dead({ id: ids[0]!, sendId: 'send-a' })
    await dead({ id: ids[1]!, sendId: 'send-b' })
    await dead({ id: ids[2]!, sendId: 'send-a', lastAttemptAt: new Date(Date.now() - 5 * 3_600_000) })
    await dead({ id: ids[3]!, sendId: 'send-b' })

    const bySend = await run(['list', '--destination', 'segment', '--json', '--send-id', 'send-a'])
    expect(
      bySend
        .json()
        .map((e) => e.messageId)
        .sort(),
    ).toEqual([ids[0], ids[2]].sort())
    const recent = await run(['list', '--destination', 'segment', '--json', '--send-id', 'send-a', '--since', '1h'])
    expect(recent.json().map((e) => e.messageId)).toEqual([ids[0]])
    const old = await run(['list', '--destination', 'segment', '--json', '--until', '2h'])
    expect(old.json().map((e) => e.messageId)).toEqual([ids[2]])
    const byId = await run([
      'list',
      '--destination',
      'segment',
      '--json',
      '--message-id',
      ids[1]!,
      '--message-id',
      ids[3]!,
    ])
    expect(
      byId
        .json()
        .map((e) => e.messageId)
        .sort(),
    ).toEqual([ids[1], ids[3]].sort())
    expect(byId.err.join('\n')).toMatch(/read 4\/4 \(100%\), 2 match/)
  }, 60_000)

  it('does not publish another copy of a message already delivered, already replayed, or twice in the DLQ', async () => {
    const [delivered, twice, once] = [randomUUID(), randomUUID(), randomUUID()]
    await new Dedupe(redis, 'segment').markDelivered([delivered])
    await dead({ id: delivered })
    await dead({ id: twice })
    await dead({ id: twice })
    await dead({ id: once })

    const first = await run(['replay', '--destination', 'segment', '--json'])
    expect(first.code).toBe(0)
    const actions = first.json().map((e) => `${e.action} ${e.messageId}`)
    expect(actions.filter((a) => a.startsWith('replayed')).sort()).toEqual(
      [`replayed ${once}`, `replayed ${twice}`].sort(),
    )
    expect(actions).toContain(`already-delivered ${delivered}`)
    expect(actions).toContain(`already-replayed ${twice}`)
    expect(first.err.at(-1)).toBe('replayed 2 of 4 matching to their original topics')
    expect(await publishedToOriginal()).toBe(2)

    // The same replay again publishes nothing.
    const second = await run(['replay', '--destination', 'segment'])
    expect(second.err.at(-1)).toBe('replayed 0 of 4 matching to their original topics')
    expect(second.err.join('\n')).toMatch(/already delivered 1, already replayed 3/)
    expect(await publishedToOriginal()).toBe(2)

    // Dead-lettered again after the replay (it failed again and was fixed): that dead letter is replayed.
    const claim = await redis.get(replayClaimKey('segment', { messageId: once, partition: 0, offset: '0' }))
    expect(claim).toMatch(/^d:/)
    await dead({ id: once, lastAttemptAt: new Date(Date.now() + 1000) })
    const third = await run(['replay', '--destination', 'segment', '--message-id', once, '--json'])
    expect(third.json().map((e) => e.action)).toEqual(['already-replayed', 'replayed'])
    expect(await publishedToOriginal()).toBe(3)
  }, 90_000)

  it('dry run: reports what replay would do, publishes and records nothing', async () => {
    const [delivered, twice, fresh] = [randomUUID(), randomUUID(), randomUUID()]
    await new Dedupe(redis, 'segment').markDelivered([delivered])
    await dead({ id: delivered })
    await dead({ id: twice })
    await dead({ id: twice })
    await dead({ id: fresh })

    const dry = await run(['replay', '--destination', 'segment', '--dry-run', '--json'])
    expect(dry.code).toBe(0)
    expect(
      dry
        .json()
        .filter((e) => e.action === 'would-replay')
        .map((e) => e.messageId)
        .sort(),
    ).toEqual([twice, fresh].sort())
    expect(dry.err.at(-1)).toBe('dry run: would replay 2 of 4 matching to their original topics')
    expect(await publishedToOriginal()).toBe(0)
    expect(await redis.exists(replayClaimKey('segment', { messageId: fresh, partition: 0, offset: '0' }))).toBe(0)

    const real = await run(['replay', '--destination', 'segment'])
    expect(real.err.at(-1)).toBe('replayed 2 of 4 matching to their original topics')
    expect(await publishedToOriginal()).toBe(2)
  }, 90_000)

  it('streams: reports progress batch by batch while reading a DLQ larger than one fetch', async () => {
    const total = 3000
    const sends: Promise<unknown>[] = []
    for (let i = 0; i < total; i++) sends.push(dead({ id: randomUUID(), padding: 2000 }))
    await Promise.all(sends)
    const list = await run(['list', '--destination', 'segment', '--progress-ms', '0'])
    expect(list.code).toBe(0)
    expect(list.out).toHaveLength(total)
    const reads = list.err.flatMap((line) => {
      const match = /read (\d+)\/(\d+)/.exec(line)
      return match ? [{ read: Number(match[1]), of: Number(match[2]) }] : []
    })
    expect(reads.every((r) => r.of === total)).toBe(true)
    // ~6 MB in fetches of about 1 MB per partition: progress lines before the end (how many depends on how the
    // producer batched the records, which the fetch returns whole).
    expect(reads.filter((r) => r.read > 0 && r.read < total).length).toBeGreaterThanOrEqual(2)
    expect(reads.at(-1)!.read).toBe(total)
  }, 120_000)

  it('refuses bad input with a precise message', async () => {
    const cases: [string[], RegExp][] = [
      [['list', '--destination', 'nope'], /--destination must be one of segment, braze/],
      [['list', '--destination', 'segment', '--dry-run'], /--dry-run applies to replay only/],
      [['list', '--destination', 'segment', '--send-id', ''], /--send-id must be 1 to 128 characters/],
      [['list', '--destination', 'segment', '--since', '1h', '--until', '2h'], /--since must be before --until/],
      [['list', '--destination', 'segment', '--progress-ms', 'soon'], /--progress-ms must be an integer/],
      [['list', '--destination', 'segment', '--since', 'yesterday'], /not a time/],
      [['list', 'extra', '--destination', 'segment'], /unexpected argument: extra/],
    ]
    for (const [args, message] of cases) {
      const err: string[] = []
      const result = await runDlqCommand(args, { out: () => {}, err: (l) => err.push(l) }, env)
      expect(result, args.join(' ')).toBe(2)
      expect(err.join('\n'), args.join(' ')).toMatch(message)
    }
  })
})
