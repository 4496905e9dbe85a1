import { HEADERS, headersFor, type CanonicalMessage } from '@lookstream/events'
import { type Simulator } from '@lookstream/simulators'
import { type Redis } from 'ioredis'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { beforeAll, describe, expect, it } from 'vitest'
import { Dedupe } from '../src/dedupe.ts'
import { Deliverer } from '../src/deliverer.ts'
import { RUNTIME_HEADERS } from '../src/failure-headers.ts'
import { type HttpSender } from '../src/http-sender.ts'
import { createDestinationMetrics } from '../src/metrics.ts'
import { processRecords, type OutboundRecord, type ProcessorDeps } from '../src/process-records.ts'
import { RateLimiter } from '../src/rate-limiter.ts'
import { RedisGate } from '../src/redis-gate.ts'
import { segmentShaped, useProcessFixture, type Conn } from './support/segment-shaped.ts'
import type { InboundRecord } from '../src/route-record.ts'
import { ThrottledLog } from '../src/throttled-log.ts'
import { ORDER_HEADER, UserOrder, orderMarksKey, parseTicket } from '../src/user-order.ts'

// processRecords with per-user order, against the Segment simulator (a Segment-shaped destination that declares
// its items state) and a real Redis: what is sent, what is held, and the tickets on the retry records.

const destination = segmentShaped({ orderedPerUser: true })

const fixture = useProcessFixture()
let redis: Redis
let simulator: Simulator
let sender: HttpSender
beforeAll(() => {
  ;({ redis, simulator, sender } = fixture)
})

function message(id: string, userId: string): CanonicalMessage {
  return {
    type: 'identify',
    messageId: id,
    userId,
    traits: { email: `${userId}@example.com` },
    timestamp: '2026-11-22T06:00:00Z',
    integrations: { All: false, Segment: true },
  }
}

let offset = 0
function record(value: CanonicalMessage): InboundRecord {
  return {
    topic: 'lookstream.identify.v1',
    partition: 0,
    offset: String(offset++),
    key: Buffer.from(value.userId!),
    value: Buffer.from(JSON.stringify(value)),
    headers: headersFor(value, { producer: 'test', sendId: 'send-1' }),
    timestamp: String(Date.now()),
  }
}

/** A retry-topic record as the consumer reads back what processRecords produced. */
function consumed(out: OutboundRecord): InboundRecord {
  return {
    topic: out.topic,
    partition: 0,
    offset: String(offset++),
    key: out.key,
    value: out.value,
    headers: out.headers,
    timestamp: String(Date.now()),
  }
}

// Each test keeps its marks and dedupe under names of its own.
let runs = 0
function deps(
  produced: OutboundRecord[],
): ProcessorDeps<Conn, Record<string, unknown>> & { order: UserOrder; orderName: string } {
  const orderName = `ordered-${runs++}`
  const log = pino({ level: 'silent' })
  const metrics = createDestinationMetrics(new Registry())
  const controller = new AbortController()
  const gate = new RedisGate(log)
  const connection: Conn = {
    name: 'default',
    endpoint: simulator.url,
    rateLimitRps: 1000,
    authorization: `Basic ${Buffer.from('wk:').toString('base64')}`,
  }
  const dedupe = new Dedupe(redis, orderName)
  return {
    destination,
    connections: new Map([['default', connection]]),
    deliverer: new Deliverer({
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
    }),
    dedupe,
    redis: gate,
    redisClient: redis,
    metrics,
    log,
    events: new ThrottledLog(log),
    retryTopic: `lookstream.retry.${destination.name}`,
    dlqTopic: `lookstream.dlq.${destination.name}`,
    retry: { delay: { baseMs: 1000, maxMs: 5000 }, windowMs: 3_600_000 },
    quickAttempts: 2,
    produce: (records: OutboundRecord[]) => {
      produced.push(...records)
      return Promise.resolve()
    },
    signal: controller.signal,
    orderName,
    order: new UserOrder(
      redis,
      orderName,
      { releaseMs: 60_000, maxParkedPerUser: 10, maxUsers: 100 },
      { parkedUsers: () => {}, released: () => {} },
    ),
  }
}

const idOf = (r: OutboundRecord | InboundRecord) => (JSON.parse(r.value!.toString()) as { messageId: string }).messageId

describe('processRecords with per-user order', () => {
  it("parks a failing message with a ticket and holds the user's next one behind it, unsent; other users go", async () => {
    simulator.reset()
    const run = `o${Date.now()}`
    const produced: OutboundRecord[] = []
    const d = deps(produced)
    simulator.faults.addRule({ type: 'status', status: 503, bodyContains: `${run}-a1` })
    // (A request failing as a whole fails every item in it: bob comes in a batch of his own.)
    const records = [record(message(`${run}-a1`, `${run}-alice`)), record(message(`${run}-a2`, `${run}-alice`))]
    expect(await processRecords(records, d)).toEqual([true, true])
    expect(await processRecords([record(message(`${run}-b1`, `${run}-bob`))], d)).toEqual([true])

    expect([...simulator.state.acceptedIds.keys()]).toEqual([`${run}-b1`])
    // The held message never reached the destination: three requests, a1 alone twice (refused), then b1.
    expect(simulator.state.counters.requests).toBe(3)
    expect(simulator.state.requests.toArray().map((r) => [r.status, r.items])).toEqual([
      [503, 0],
      [503, 0],
      [200, 1],
    ])
    expect(produced.map(idOf)).toEqual([`${run}-a1`, `${run}-a2`])
    const [first, second] = produced.map((r) => parseTicket(r.headers[ORDER_HEADER]))
    expect(first).toMatchObject({ seq: 1 })
    expect(second).toEqual({ epoch: first!.epoch, seq: 2 })
    expect(produced[0]!.headers[RUNTIME_HEADERS.errorCode]).toBe('LS_DEST_RETRYABLE')
    expect(produced[1]!.headers[RUNTIME_HEADERS.errorCode]).toBe('LS_DEST_ORDER_HELD')
    expect(produced[1]!.headers[HEADERS.attempts]).toBe('0')
    // Redis holds a hash of the user, never the user id or any value of the row.
    const stored = JSON.stringify(await redis.hgetall(orderMarksKey(d.orderName)))
    expect(stored).not.toContain('alice')
    expect(stored).not.toContain('example.com')

    // A new message of alice on the canonical topic while she is parked: held too, with the next ticket.
    produced.length = 0
    await processRecords([record(message(`${run}-a3`, `${run}-alice`))], d)
    expect(produced.map((r) => [idOf(r), parseTicket(r.headers[ORDER_HEADER])?.seq])).toEqual([[`${run}-a3`, 3]])
    const parked = [
      { ...produced[0]! },
      ...[first, second].map((ticket, n) => ({
        ...produced[0]!,
        value: Buffer.from(JSON.stringify(message(`${run}-a${n + 1}`, `${run}-alice`))),
        headers: { ...produced[0]!.headers, [ORDER_HEADER]: `${ticket!.epoch}.${ticket!.seq}` },
      })),
    ]

    // The retry topic gives them back in their order once a1 can be delivered: all three go, in order.
    simulator.faults.clear()
    produced.length = 0
    const retried = [parked[1]!, parked[2]!, parked[0]!].map(consumed)
    expect(await processRecords(retried, d)).toEqual([true, true, true])
    expect(produced).toEqual([])
    expect([...simulator.state.acceptedIds.keys()]).toEqual([`${run}-b1`, `${run}-a1`, `${run}-a2`, `${run}-a3`])
    expect(await redis.exists(orderMarksKey(d.orderName))).toBe(0)
    expect(d.order.activeUsers).toBe(0)
  })

  it('a parked message found already delivered (a crash before its offset was committed) counts as done', async () => {
    simulator.reset()
    const run = `d${Date.now()}`
    const produced: OutboundRecord[] = []
    const d = deps(produced)
    simulator.faults.addRule({ type: 'status', status: 503, bodyContains: `${run}-e1` })
    await processRecords([record(message(`${run}-e1`, `${run}-erin`)), record(message(`${run}-e2`, `${run}-erin`))], d)
    const [e1, e2] = produced.splice(0)
    expect(e2!.headers[RUNTIME_HEADERS.errorCode]).toBe('LS_DEST_ORDER_HELD')
    simulator.faults.clear()
    // e1 was delivered by a process that died before committing: its copy comes back as a duplicate.
    await d.dedupe.markDelivered([`${run}-e1`])
    expect(await processRecords([consumed(e1!), consumed(e2!)], d)).toEqual([true, true])
    expect(produced).toEqual([])
    expect([...simulator.state.acceptedIds.keys()]).toEqual([`${run}-e2`])
    expect(await redis.exists(orderMarksKey(d.orderName))).toBe(0)
  })

  it('a ticketed message that is not next is held again, keeping its ticket and place', async () => {
    simulator.reset()
    const run = `n${Date.now()}`
    const produced: OutboundRecord[] = []
    const d = deps(produced)
    simulator.faults.addRule({ type: 'status', status: 503, bodyContains: `${run}-c1` })
    await processRecords(
      [record(message(`${run}-c1`, `${run}-carol`)), record(message(`${run}-c2`, `${run}-carol`))],
      d,
    )
    const [c1, c2] = produced.splice(0)
    // c1 comes back and fails again (parked again at the end of the retry partition); then c2 comes up.
    await processRecords([consumed(c1!)], d)
    expect(produced.map((r) => [idOf(r), r.headers[ORDER_HEADER]])).toEqual([[`${run}-c1`, c1!.headers[ORDER_HEADER]]])
    produced.length = 0
    await processRecords([consumed(c2!)], d)
    expect(produced.map((r) => [idOf(r), r.headers[ORDER_HEADER], r.headers[RUNTIME_HEADERS.errorCode]])).toEqual([
      [`${run}-c2`, c2!.headers[ORDER_HEADER], 'LS_DEST_ORDER_HELD'],
    ])
    expect(simulator.state.acceptedIds.size).toBe(0)
    expect(d.order.activeUsers).toBe(0)
  })
})
