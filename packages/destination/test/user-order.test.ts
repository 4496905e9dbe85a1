import { startRedis, waitFor } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  UserOrder,
  orderDeadlinesKey,
  orderMarksKey,
  orderUserOf,
  orderVerdict,
  parseTicket,
  type PredecessorFate,
  type UserOrderSettings,
} from '../src/user-order.ts'

let redisServer: Awaited<ReturnType<typeof startRedis>>
let redis: Redis

beforeAll(async () => {
  redisServer = await startRedis()
  redis = new Redis(redisServer.url)
})

afterAll(async () => {
  redis.disconnect()
  await redisServer.stop()
})

let destinations = 0
function orderFor(settings: Partial<UserOrderSettings> = {}) {
  const destination = `ordered-${destinations++}`
  const released: { reason: string; users: number }[] = []
  let parkedUsers = -1
  const order = new UserOrder(
    redis,
    destination,
    { releaseMs: 60_000, maxParkedPerUser: 10, maxUsers: 1000, ...settings },
    {
      parkedUsers: (count) => {
        parkedUsers = count
      },
      released: (reason, users) => released.push({ reason, users }),
    },
  )
  return { order, destination, released, parkedUsers: () => parkedUsers }
}

describe('orderUserOf and tickets', () => {
  it('identifies a user by a hash of the Kafka key, never the key itself; no key, no order', () => {
    const user = orderUserOf(Buffer.from('jane@example.com'))
    expect(user).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(user).not.toContain('jane')
    expect(orderUserOf(Buffer.from('jane@example.com'))).toBe(user)
    expect(orderUserOf(Buffer.from('john@example.com'))).not.toBe(user)
    expect(orderUserOf(null)).toBeUndefined()
    expect(orderUserOf(Buffer.alloc(0))).toBeUndefined()
  })

  it('reads only tickets the runtime writes: anything else leaves the record unticketed', () => {
    expect(parseTicket('a1b2.3')).toEqual({ epoch: 'a1b2', seq: 3 })
    for (const bad of [
      undefined,
      '',
      'a1b2',
      'a1b2.0',
      'a1b2.-1',
      'A1.2',
      'a1b2.3.4',
      'x'.repeat(50) + '.1',
      'ab.1e3',
    ]) {
      expect(parseTicket(bad), String(bad)).toBeUndefined()
    }
  })

  it('sends the next ticket of the mark and old copies, holds later tickets and new messages while parked', () => {
    const mark = { epoch: 'e1', issued: 3, done: 1 }
    expect(orderVerdict(undefined, undefined, false)).toBe('send')
    expect(orderVerdict(undefined, { epoch: 'e1', seq: 3 }, true)).toBe('send')
    expect(orderVerdict(mark, { epoch: 'e1', seq: 2 }, true)).toBe('send')
    expect(orderVerdict(mark, { epoch: 'e1', seq: 1 }, true)).toBe('send')
    expect(orderVerdict(mark, { epoch: 'e1', seq: 3 }, true)).toBe('hold')
    expect(orderVerdict(mark, undefined, false)).toBe('hold')
    // Parked without a ticket of this mark (its user was released): it never waits again.
    expect(orderVerdict(mark, { epoch: 'e0', seq: 1 }, true)).toBe('send')
    expect(orderVerdict(mark, undefined, true)).toBe('send')
  })
})

describe('UserOrder marks in Redis', () => {
  it('parks a user with its first message, tickets later ones in order, and unparks after the last is done', async () => {
    const { order, destination, parkedUsers } = orderFor()
    const [first] = await order.park([{ user: 'u1', ticket: undefined }])
    expect(first).toMatchObject({ seq: 1 })
    const [second, third] = await order.park([
      { user: 'u1', ticket: undefined },
      { user: 'u1', ticket: undefined },
    ])
    expect([second!.seq, third!.seq]).toEqual([2, 3])
    expect(new Set([first!.epoch, second!.epoch, third!.epoch]).size).toBe(1)
    expect(parkedUsers()).toBe(1)
    // Parked again after another failure: it keeps its place.
    expect(await order.park([{ user: 'u1', ticket: first }])).toEqual([first])

    let [mark] = await order.lookup(['u1'])
    expect(mark).toEqual({ epoch: first!.epoch, issued: 3, done: 0 })
    expect(orderVerdict(mark, second, true)).toBe('hold')
    expect(orderVerdict(mark, first, true)).toBe('send')

    // Done out of turn changes nothing; in turn, the next one may go.
    await order.complete('u1', second!)
    expect((await order.lookup(['u1']))[0]).toEqual(mark)
    await order.complete('u1', first!)
    ;[mark] = await order.lookup(['u1'])
    expect(mark).toEqual({ epoch: first!.epoch, issued: 3, done: 1 })
    expect(orderVerdict(mark, second, true)).toBe('send')
    await order.complete('u1', first!)
    await Promise.all([order.complete('u1', second!), order.complete('u1', third!)])
    expect(await order.lookup(['u1'])).toEqual([undefined])
    expect(parkedUsers()).toBe(0)
    expect(await redis.exists(orderMarksKey(destination), orderDeadlinesKey(destination))).toBe(0)
  })

  it('says whether any user is parked: no before the first park, yes while one is, no once it is done', async () => {
    const { order } = orderFor()
    expect(await order.anyParked()).toBe(false)
    const [ticket] = await order.park([{ user: 'p1', ticket: undefined }])
    expect(await order.anyParked()).toBe(true)
    // Per destination: another destination has none parked.
    expect(await orderFor().order.anyParked()).toBe(false)
    await order.complete('p1', ticket!)
    expect(await order.anyParked()).toBe(false)
  })

  it('keeps its state on one Cluster slot, with an expiry, holding hashes and numbers only', async () => {
    const { order, destination } = orderFor({ releaseMs: 30_000 })
    const user = orderUserOf(Buffer.from('user-with-a-name'))!
    await order.park([{ user, ticket: undefined }])
    const keys = await redis.keys(`lookstream:{order:${destination}}:*`)
    expect(keys.sort()).toEqual([orderDeadlinesKey(destination), orderMarksKey(destination)].sort())
    for (const key of keys) {
      expect(key).toContain(`{order:${destination}}`)
      const ttl = await redis.pttl(key)
      expect(ttl).toBeGreaterThan(30_000)
      expect(ttl).toBeLessThanOrEqual(90_000)
    }
    const stored = JSON.stringify([
      await redis.hgetall(orderMarksKey(destination)),
      await redis.zrange(orderDeadlinesKey(destination), 0, -1),
    ])
    expect(stored).not.toContain('user-with-a-name')
    expect(stored).toContain(user)
  })

  it('releases a user after the time box: the mark is gone and the release is reported', async () => {
    const { order, released } = orderFor({ releaseMs: 300 })
    const [ticket] = await order.park([{ user: 'slow', ticket: undefined }])
    await order.park([{ user: 'slow', ticket: undefined }])
    expect((await order.lookup(['slow']))[0]).toBeDefined()
    await waitFor(async () => (await order.lookup(['slow']))[0] === undefined, { timeoutMs: 5000 })
    expect(released).toEqual([{ reason: 'time', users: 1 }])
    // Parked again after the release, it stays unordered: it does not park its user anew.
    expect(await order.park([{ user: 'slow', ticket }])).toEqual([undefined])
    expect(await order.lookup(['slow'])).toEqual([undefined])
  })

  it('releases a user at the per-user limit instead of parking one more behind it', async () => {
    const { order, released } = orderFor({ maxParkedPerUser: 3 })
    const tickets = await order.park(Array.from({ length: 3 }, () => ({ user: 'hot', ticket: undefined })))
    expect(tickets.map((t) => t?.seq)).toEqual([1, 2, 3])
    const [fourth] = await order.park([{ user: 'hot', ticket: undefined }])
    expect(fourth).toBeUndefined()
    expect(await order.lookup(['hot'])).toEqual([undefined])
    expect(released).toEqual([{ reason: 'limit', users: 1 }])
    // Another user is untouched.
    expect(await order.park([{ user: 'calm', ticket: undefined }])).toMatchObject([{ seq: 1 }])
  })

  it('holds at most maxUsers users: beyond it a newly parked user is not held, and the refusal is reported', async () => {
    const { order, released, parkedUsers } = orderFor({ maxUsers: 2 })
    const tickets = await order.park(['a', 'b', 'c'].map((user) => ({ user, ticket: undefined })))
    expect(tickets.map((t) => t?.seq)).toEqual([1, 1, undefined])
    expect(parkedUsers()).toBe(2)
    expect(released).toEqual([{ reason: 'capacity', users: 1 }])
    // Already parked users still queue their later messages.
    expect((await order.park([{ user: 'a', ticket: undefined }]))[0]?.seq).toBe(2)
  })

  it('gives a user parked again after a release a new epoch: tickets of the old one neither wait nor join it', async () => {
    const { order } = orderFor({ maxParkedPerUser: 1 })
    const [old] = await order.park([{ user: 'u', ticket: undefined }])
    await order.park([{ user: 'u', ticket: undefined }]) // released at the limit
    const [fresh] = await order.park([{ user: 'u', ticket: undefined }])
    expect(fresh!.epoch).not.toBe(old!.epoch)
    const [mark] = await order.lookup(['u'])
    expect(orderVerdict(mark, old, true)).toBe('send')
    expect(orderVerdict(mark, fresh, true)).toBe('send')
    expect(await order.park([{ user: 'u', ticket: old }])).toEqual([undefined])
    expect((await order.lookup(['u']))[0]).toEqual(mark)
  })
})

/** A message's turn as processRecords takes it: at once (true), or waiting behind the user's earlier message. */
function enter(order: UserOrder, user: string, batch: object, resume: (fate: PredecessorFate) => void): boolean {
  if (order.tryEnter(user)) return true
  order.wait(user, batch, resume)
  return false
}

describe('UserOrder turns in this process', () => {
  it('lets one message per user in at a time, the others in arrival order, told what became of the one before', () => {
    const { order } = orderFor()
    const batch = {}
    const told: string[] = []
    expect(enter(order, 'u', batch, () => told.push('never'))).toBe(true)
    expect(enter(order, 'v', batch, () => told.push('never'))).toBe(true)
    expect(enter(order, 'u', batch, (fate) => told.push(`second:${fate}`))).toBe(false)
    expect(enter(order, 'u', batch, (fate) => told.push(`third:${fate}`))).toBe(false)
    order.leave('u', 'parked')
    expect(told).toEqual(['second:parked'])
    order.leave('u', 'finished')
    expect(told).toEqual(['second:parked', 'third:finished'])
    expect(order.activeUsers).toBe(2)
    order.leave('u', 'finished')
    order.leave('v', 'finished')
    expect(order.activeUsers).toBe(0)
  })

  it('passes a turn on at once only to a message of the same batch', () => {
    const { order } = orderFor()
    const [first, second] = [{}, {}]
    const told: string[] = []
    enter(order, 'u', first, () => told.push('never'))
    enter(order, 'u', second, (fate) => told.push(`later batch:${fate}`))
    expect(order.passWithin('u', first, 'parked')).toBe(false)
    expect(told).toEqual([])
    enter(order, 'w', first, () => told.push('never'))
    enter(order, 'w', first, (fate) => told.push(`same batch:${fate}`))
    expect(order.passWithin('w', first, 'parked')).toBe(true)
    expect(told).toEqual(['same batch:parked'])
    order.leave('u', 'parked')
    expect(told).toEqual(['same batch:parked', 'later batch:parked'])
  })
})
