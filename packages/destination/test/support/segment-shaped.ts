import { type CanonicalMessage } from '@lookstream/events'
import { startSegmentSimulator, type Simulator } from '@lookstream/simulators'
import { startRedis, type RedisProcess } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import type { Connection, HttpDestination } from '../../src/destination.ts'
import type { PermanentError } from '../../src/errors.ts'
import { HttpSender } from '../../src/http-sender.ts'

// What the processRecords tests share: a Segment-shaped destination (its items are the messages less their
// routing) and the real parts it runs against (redis-server, the Segment simulator, an HTTP sender).

export interface Conn extends Connection {
  authorization: string
}

export type Item = Record<string, unknown>

export function segmentShaped(
  options: { orderedPerUser?: boolean; check?: (message: CanonicalMessage) => PermanentError | undefined } = {},
): HttpDestination<never, Conn, Item> {
  return {
    kind: 'http',
    name: 'segment',
    integrationKey: 'Segment',
    ...(options.orderedPerUser === undefined ? {} : { orderedPerUser: options.orderedPerUser }),
    config: undefined as never,
    limits: { maxBatchItems: 100, maxBatchBytes: 400_000, maxItemBytes: 2000, lingerMs: 1 },
    connections: () => new Map(),
    allowedHosts: () => [],
    toItem: (message) => {
      const refused = options.check?.(message)
      if (refused !== undefined) return refused
      const { integrations: _routing, ...item } = message
      return item
    },
    buildRequest: (items, connection) => ({
      url: `${connection.endpoint}/v1/batch`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: connection.authorization },
      body: `{"batch":[${items.map((i) => i.json).join(',')}]}`,
    }),
    classify: (response, items) =>
      response.status < 300
        ? { kind: 'items', outcomes: items.map(() => ({ kind: 'delivered' as const })) }
        : {
            kind: 'items',
            outcomes: items.map(() => ({ kind: 'retryable' as const, reason: `HTTP ${response.status}` })),
          },
  }
}

export interface ProcessFixture {
  redisServer: RedisProcess
  redis: Redis
  simulator: Simulator
  sender: HttpSender
}

/** Starts the fixture before the file's tests and stops it after them; read its parts inside tests. */
export function useProcessFixture(): ProcessFixture {
  const fixture = {} as ProcessFixture
  beforeAll(async () => {
    fixture.redisServer = await startRedis()
    fixture.redis = new Redis(fixture.redisServer.url)
    fixture.simulator = await startSegmentSimulator({ writeKeys: ['wk'], rateLimit: null })
    fixture.sender = new HttpSender({ allowedHosts: ['127.0.0.1'], timeoutMs: 1000, connectionsPerOrigin: 2 })
  })
  afterAll(async () => {
    await fixture.sender.close()
    await fixture.simulator.close()
    fixture.redis.disconnect()
    await fixture.redisServer.stop()
  })
  return fixture
}
