import { HEADERS, headersFor, sendRecordKey, type CanonicalMessage } from '@lookstream/events'
import { type Simulator } from '@lookstream/simulators'
import { waitFor } from '@lookstream/testing'
import { type Redis } from 'ioredis'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { beforeAll, describe, expect, it } from 'vitest'
import { Dedupe } from '../src/dedupe.ts'
import { Deliverer } from '../src/deliverer.ts'
import { ThrottledLog } from '../src/throttled-log.ts'
import { deriveHistoryKey, failuresKey, readRowFailures, recordRowFailures } from '@lookstream/send-history'
import { PermanentError } from '../src/errors.ts'
import { RUNTIME_HEADERS } from '../src/failure-headers.ts'
import { type HttpSender } from '../src/http-sender.ts'
import { createDestinationMetrics } from '../src/metrics.ts'
import { processRecords, type OutboundRecord } from '../src/process-records.ts'
import { RateLimiter } from '../src/rate-limiter.ts'
import { RedisGate } from '../src/redis-gate.ts'
import { segmentShaped, useProcessFixture, type Conn } from './support/segment-shaped.ts'
import type { InboundRecord } from '../src/route-record.ts'

// Segment-shaped, with two traps: a message whose userId is "bug" makes toItem throw, "nobody" is refused.
const destination = segmentShaped({
  check: (message) => {
    if (message.userId === 'bug') throw new Error('boom')
    if (message.userId === 'nobody') return new PermanentError('refused by the mapping')
    return undefined
  },
})

const fixture = useProcessFixture()
let redis: Redis
let simulator: Simulator
let sender: HttpSender
beforeAll(() => {
  ;({ redis, simulator, sender } = fixture)
})

function message(id: string, userId = 'u-1'): CanonicalMessage {
  return {
    type: 'identify',
    messageId: id,
    userId,
    timestamp: '2026-11-22T06:00:00Z',
    integrations: { All: false, Segment: true },
  }
}

let offset = 0
function record(value: CanonicalMessage | string, headers?: Record<string, string>): InboundRecord {
  return {
    topic: 'lookstream.identify.v1',
    partition: 1,
    offset: String(offset++),
    key: Buffer.from('k'),
    value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    headers: headers ?? (typeof value === 'string' ? {} : headersFor(value, { producer: 'test', sendId: 'send-1' })),
    timestamp: String(Date.now()),
  }
}

function deps(
  produced: OutboundRecord[],
  windowMs = 3_600_000,
  {
    shuttingDown = false,
    maxBatchItems,
    rateLimitRps = 1000,
  }: {
    shuttingDown?: boolean
    maxBatchItems?: number
    rateLimitRps?: number
  } = {},
) {
  const log = pino({ level: 'silent' })
  const metrics = createDestinationMetrics(new Registry())
  const controller = new AbortController()
  const gate = new RedisGate(log)
  const connection: Conn = {
    name: 'default',
    endpoint: simulator.url,
    rateLimitRps,
    authorization: `Basic ${Buffer.from('wk:').toString('base64')}`,
  }
  const dedupe = new Dedupe(redis, `segment-${Math.random()}`)
  const deliverer = new Deliverer(
    {
      destination,
      http: sender,
      rateLimiter: new RateLimiter(redis),
      dedupe,
      redis: gate,
      metrics,
      log,
      policy: {
        quickAttempts: 2,
        backoff: { baseMs: 5, maxMs: 20 },
        authBackoff: { baseMs: 5, maxMs: 20 },
        maxInFlightPerConnection: 2,
        lingerMs: 1,
      },
      signal: controller.signal,
    },
    maxBatchItems === undefined ? {} : { maxBatchItems },
  )
  if (shuttingDown) controller.abort(new Error('shutting down'))
  return {
    destination,
    connections: new Map([
      ['default', connection],
      ['backup', { ...connection, name: 'backup' }],
    ]),
    deliverer,
    dedupe,
    redis: gate,
    redisClient: redis,
    metrics,
    log,
    events: new ThrottledLog(log),
    retryTopic: 'lookstream.retry.segment',
    dlqTopic: 'lookstream.dlq.segment',
    retry: { delay: { baseMs: 1000, maxMs: 5000 }, windowMs },
    quickAttempts: 2,
    produce: (records: OutboundRecord[]) => {
      produced.push(...records)
      return Promise.resolve()
    },
    signal: controller.signal,
  }
}

describe('processRecords', () => {
  it('adds delivered counts to the send record while a paced batch is still being delivered', async () => {
    simulator.reset()
    const run = `p${Date.now()}`
    const sendId = `send-${run}`
    await redis.hset(sendRecordKey(sendId), { send_id: sendId })
    const records = Array.from({ length: 30 }, (_, i) => {
      const value = message(`${run}-${i}`, `u-${i}`)
      return record(value, headersFor(value, { producer: 'test', sendId }))
    })
    // Ten requests of three at five a second: about two seconds for the batch.
    const processing = processRecords(records, deps([], 3_600_000, { maxBatchItems: 3, rateLimitRps: 5 }))
    const delivered = async () => Number((await redis.hget(sendRecordKey(sendId), 'delivered')) ?? 0)
    await waitFor(async () => (await delivered()) > 0, { timeoutMs: 5000, message: 'a first progress write' })
    expect(simulator.state.acceptedIds.size).toBeLessThan(30)
    expect(await processing).toEqual(records.map(() => true))
    expect(await delivered()).toBe(30)
  })

  it('keeps the dead-lettered rows of a send for the send history: row, messageId, code, reason and identity, sealed', async () => {
    simulator.reset()
    const run = `h${Date.now()}`
    const sendId = `send-${run}`
    await redis.hset(sendRecordKey(sendId), { send_id: sendId })
    await redis.expire(sendRecordKey(sendId), 3600)
    const refused = {
      ...message(`${run}-refused`, 'nobody'),
      context: { lookstream: { sendId, row: 7, action: 'segment_identify' } },
    }
    const big = {
      ...message(`${run}-big`),
      traits: { blob: 'x'.repeat(3000) },
      context: { lookstream: { sendId, row: 9, action: 'segment_identify' } },
    } as CanonicalMessage
    const ok = message(`${run}-ok`)
    const records = [refused, big, ok].map((value) => record(value, headersFor(value, { producer: 'test', sendId })))
    const key = deriveHistoryKey('a-send-history-secret-for-tests')
    const done = await processRecords(records, {
      ...deps([]),
      rowFailures: (id, entries) => recordRowFailures(redis, id, entries, { key }),
    })
    expect(done).toEqual([true, true, true])
    const kept = await readRowFailures(redis, sendId, key)
    expect(
      kept
        .map((f) => [f.row, f.messageId, f.stage, f.code, f.reason, f.identity])
        .sort((a, b) => Number(a[0]) - Number(b[0])),
    ).toEqual([
      [7, `${run}-refused`, 'dead-lettered', 'LS_DEST_PERMANENT', 'refused by the mapping', { userId: refused.userId }],
      [
        9,
        `${run}-big`,
        'dead-lettered',
        'LS_DEST_ITEM_TOO_LARGE',
        expect.stringContaining('over the') as unknown,
        { userId: big.userId },
      ],
    ])
    // Sealed: the identity is not readable in Redis without the key.
    const raw = JSON.stringify(await redis.lrange(failuresKey(sendId), 0, -1))
    expect(raw).not.toContain(String(refused.userId))
  })

  it('takes every record to a final state: delivered, skipped, dead-lettered or parked, each with its headers', async () => {
    simulator.reset()
    const produced: OutboundRecord[] = []
    const run = `r${Date.now()}`
    const records = [
      record(message(`${run}-ok`)),
      record(message(`${run}-ok`)), // the same message twice in one batch: sent once
      record('{"not":"for us"}', { [HEADERS.destinations]: 'braze' }),
      record(message(`${run}-refused`, 'nobody')),
      record(message(`${run}-bug`, 'bug')),
      record({ ...message(`${run}-big`), traits: { blob: 'x'.repeat(3000) } } as CanonicalMessage),
      record(message(`${run}-elsewhere`), { [HEADERS.destinations]: 'segment' }),
    ]
    records[6]!.value = Buffer.from(
      JSON.stringify({ ...message(`${run}-elsewhere`), integrations: { All: false, Segment: { connection: 'eu' } } }),
    )
    const done = await processRecords(records, deps(produced))
    expect(done).toEqual(records.map(() => true))
    expect([...simulator.state.acceptedIds.keys()]).toEqual([`${run}-ok`])
    expect(simulator.state.counters.itemsReceived).toBe(1)

    const byId = new Map(produced.map((r) => [(JSON.parse(r.value!.toString()) as { messageId: string }).messageId, r]))
    expect(byId.get(`${run}-refused`)?.topic).toBe('lookstream.dlq.segment')
    expect(byId.get(`${run}-refused`)?.headers[HEADERS.error]).toBe('refused by the mapping')
    expect(byId.get(`${run}-big`)?.headers[RUNTIME_HEADERS.errorCode]).toBe('LS_DEST_ITEM_TOO_LARGE')
    expect(byId.get(`${run}-elsewhere`)?.headers[RUNTIME_HEADERS.errorCode]).toBe('LS_DEST_UNKNOWN_CONNECTION')
    const parked = byId.get(`${run}-bug`)!
    expect(parked.topic).toBe('lookstream.retry.segment')
    expect(parked.headers[HEADERS.error]).toBe('mapping failed: boom')
    expect(Date.parse(parked.headers[HEADERS.retryAt]!)).toBeGreaterThan(Date.now())
    expect(parked.headers[HEADERS.originalOffset]).toBe(records[4]!.offset)
    expect(parked.headers[HEADERS.sendId]).toBe('send-1')
    expect(produced).toHaveLength(4)
  })

  it('parks transient failures with their attempts, and dead-letters them once the retry window has passed', async () => {
    simulator.reset()
    simulator.faults.configure({ outage: { type: 'status', status: 503, durationMs: 60_000 } })
    const run = `w${Date.now()}`
    const produced: OutboundRecord[] = []
    await processRecords([record(message(`${run}-1`))], deps(produced))
    expect(produced[0]?.topic).toBe('lookstream.retry.segment')
    expect(produced[0]?.headers[HEADERS.attempts]).toBe('2')

    // The parked record comes back from the retry topic after the window: it goes to the DLQ with that reason.
    const parked = produced[0]!
    const again: InboundRecord = {
      topic: 'lookstream.retry.segment',
      partition: 0,
      offset: '0',
      key: parked.key,
      value: parked.value,
      headers: { ...parked.headers, [HEADERS.firstAttemptAt]: new Date(Date.now() - 10_000).toISOString() },
      timestamp: String(Date.now()),
    }
    const later: OutboundRecord[] = []
    await processRecords([again], deps(later, 5_000))
    simulator.faults.clear()
    expect(later[0]?.topic).toBe('lookstream.dlq.segment')
    expect(later[0]?.headers[RUNTIME_HEADERS.errorCode]).toBe('LS_DEST_RETRY_WINDOW_EXCEEDED')
    expect(later[0]?.headers[HEADERS.attempts]).toBe('4')
    expect(later[0]?.headers[HEADERS.originalTopic]).toBe('lookstream.identify.v1')
    expect(later[0]?.headers[HEADERS.retryAt]).toBeUndefined()
  })

  it('during a shutdown gives every record back undone, also a repeat whose first copy went to another connection', async () => {
    simulator.reset()
    const run = `s${Date.now()}`
    const to = (id: string, connection: string): CanonicalMessage => ({
      ...message(id),
      integrations: { All: false, Segment: { connection } },
    })
    // The deliverer hands jobs back as soon as they are submitted; the repeat of `${run}-a` comes after the
    // records for "default" were submitted, so its first copy has already been given back.
    const records = [
      record(to(`${run}-a`, 'default')),
      record(to(`${run}-b`, 'backup')),
      record(to(`${run}-a`, 'backup')),
    ]
    const produced: OutboundRecord[] = []
    const done = await processRecords(records, deps(produced, undefined, { shuttingDown: true }))
    expect(done).toEqual([false, false, false])
    expect(produced).toEqual([])
    expect(simulator.state.counters.requests).toBe(0)
  })
})
