import { RedisEnv, loadConfig, resolveRedisSettings, type RedisConnection } from '@lookstream/config'
import {
  createTestCertificates,
  startRedis,
  startRedisCluster,
  startRedisSentinel,
  type RedisClusterProcess,
  type RedisSentinelProcess,
  type RedisProcess,
  type TestCertificates,
  waitFor,
} from '@lookstream/testing'
import { Cluster, Redis } from 'ioredis'
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkRedisAtStart, createRedis, hashTag, type RedisClient } from '../src/index.ts'

const USER = 'lookstream-svc'
const PASSWORD = 'redis-acl-password-1'

function connection(env: Record<string, string>): RedisConnection {
  return resolveRedisSettings(loadConfig(RedisEnv, env))
}

function closed(client: RedisClient): void {
  client.disconnect()
}

/** The error a start with these settings fails with (null when it does not fail). */
async function startError(settings: RedisConnection): Promise<(Error & { code: string }) | null> {
  const redis = createRedis(settings)
  try {
    return await checkRedisAtStart(redis, settings).then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    )
  } finally {
    closed(redis)
  }
}

describe('createRedis with rediss:// and an ACL user', () => {
  let certs: TestCertificates
  let server: RedisProcess

  beforeAll(async () => {
    certs = createTestCertificates()
    server = await startRedis({
      tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile },
      users: { [USER]: PASSWORD },
    })
  })

  afterAll(async () => {
    await server?.stop()
    certs?.remove()
  })

  const secured = (extra: Record<string, string> = {}) =>
    connection({
      REDIS_URL: server.url,
      REDIS_TLS_CA_FILE: certs.caFile,
      REDIS_USERNAME: USER,
      REDIS_PASSWORD: PASSWORD,
      ...extra,
    })

  it('connects over TLS as the ACL user and runs commands', async () => {
    expect(server.url).toMatch(/^rediss:\/\//)
    const redis = createRedis(secured())
    try {
      expect(await checkRedisAtStart(redis, secured())).toBe('ready')
      await redis.set('lookstream:test:tls', 'yes')
      expect(await redis.get('lookstream:test:tls')).toBe('yes')
      expect(await redis.call('ACL', 'WHOAMI')).toBe(USER)
    } finally {
      closed(redis)
    }
  })

  it('fails the start with LS_REDIS_AUTH_FAILED on a wrong password, naming the settings and not the password', async () => {
    const settings = secured({ REDIS_PASSWORD: 'not-the-password' })
    const err = await startError(settings)
    expect(err?.code).toBe('LS_REDIS_AUTH_FAILED')
    expect(err?.message).toContain('REDIS_PASSWORD')
    expect(err?.message).toContain(`ACL user "${USER}"`)
    expect(err?.message).not.toContain('not-the-password')
  })

  it('fails the start with LS_REDIS_AUTH_FAILED when no credentials are given', async () => {
    const settings = connection({ REDIS_URL: server.url, REDIS_TLS_CA_FILE: certs.caFile })
    const err = await startError(settings)
    expect(err?.code).toBe('LS_REDIS_AUTH_FAILED')
    expect(err?.message).toContain('Redis requires credentials')
  })

  it('fails the start with LS_REDIS_TLS_FAILED when the server certificate is not trusted', async () => {
    const settings = secured({ REDIS_TLS_CA_FILE: certs.otherCaFile })
    const err = await startError(settings)
    expect(err?.code).toBe('LS_REDIS_TLS_FAILED')
    expect(err?.message).toContain('REDIS_TLS_CA_FILE')
  })

  it('fails fast while the TLS server is down and recovers by itself when it is back', async () => {
    const settings = secured()
    const redis = createRedis(settings, { failFast: true, maxRetriesPerRequest: 1 })
    try {
      expect(await checkRedisAtStart(redis, settings)).toBe('ready')
      const port = server.port
      await server.stop()
      await waitFor(() => redis.status !== 'ready', { message: 'the client to notice the outage' })
      await expect(redis.ping()).rejects.toThrow()
      server = await startRedis({
        port,
        tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile },
        users: { [USER]: PASSWORD },
      })
      expect(await waitFor(() => redis.ping().catch(() => null), { message: 'PONG after the restart' })).toBe('PONG')
    } finally {
      closed(redis)
    }
  })

  it('reports an unreachable Redis as unavailable, not as a configuration error', async () => {
    const settings = connection({ REDIS_URL: 'redis://127.0.0.1:1' })
    const redis = createRedis(settings)
    try {
      expect(await checkRedisAtStart(redis, settings, 500)).toBe('unavailable')
    } finally {
      closed(redis)
    }
  })
})

describe('createRedis with REDIS_MODE=cluster (3 masters)', () => {
  let cluster: RedisClusterProcess

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 })
  })

  afterAll(async () => {
    await cluster?.stop()
  })

  it('builds a Cluster client from the seed nodes and spreads keys over the masters', async () => {
    const settings = connection({ REDIS_URL: cluster.url, REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: cluster.nodes })
    const redis = createRedis(settings)
    try {
      expect(redis).toBeInstanceOf(Cluster)
      expect(await checkRedisAtStart(redis, settings)).toBe('ready')
      const keys = Array.from({ length: 30 }, (_, i) => `lookstream:test:spread:${i}`)
      for (const key of keys) await redis.set(key, key)
      const perMaster = await Promise.all(
        (redis as Cluster).nodes('master').map(async (node) => Number(await node.dbsize())),
      )
      expect(perMaster.filter((n) => n > 0).length).toBe(3)
    } finally {
      closed(redis)
    }
  })

  it('runs a multi-key script on hash-tagged keys, and Redis refuses it without the tag', async () => {
    const redis = createRedis(connection({ REDIS_URL: cluster.url, REDIS_MODE: 'cluster' }))
    try {
      const script = "return redis.call('MSET', KEYS[1], ARGV[1], KEYS[2], ARGV[1])"
      const tag = hashTag('batch-7')
      await redis.eval(script, 2, `lookstream:${tag}:a`, `lookstream:${tag}:b`, 'v')
      expect(await redis.mget(`lookstream:${tag}:a`, `lookstream:${tag}:b`)).toEqual(['v', 'v'])
      // Two untagged keys on different slots: the cluster answers CROSSSLOT.
      await expect(redis.eval(script, 2, 'lookstream:untagged:a', 'lookstream:untagged:b', 'v')).rejects.toThrow(
        /CROSSSLOT/,
      )
    } finally {
      closed(redis)
    }
  })

  it('with a command timeout, fails commands within it while every master is down, and recovers by itself', async () => {
    const settings = connection({ REDIS_URL: cluster.url, REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: cluster.nodes })
    const redis = createRedis(settings, { commandTimeout: 300 })
    redis.on('error', () => {})
    try {
      expect(await checkRedisAtStart(redis, settings)).toBe('ready')
      await redis.set('lookstream:test:bounded', '1')
      await Promise.all(cluster.masters.map((m) => m.stop()))
      // The first command finds the masters gone (the client's status is no help: it stays "ready" until then).
      for (const key of ['lookstream:test:bounded', 'lookstream:test:other', 'lookstream:test:third']) {
        const started = performance.now()
        await expect(redis.get(key)).rejects.toThrow()
        expect(performance.now() - started).toBeLessThan(2000)
      }
      for (const i of cluster.masters.keys()) await cluster.restartMaster(i)
      expect(
        await waitFor(() => redis.set('lookstream:test:bounded', '2').catch(() => null), {
          timeoutMs: 20_000,
          message: 'a write accepted after the restart',
        }),
      ).toBe('OK')
    } finally {
      closed(redis)
    }
  })

  it('refuses hash tag parts that would end the tag early', () => {
    expect(() => hashTag('a}b')).toThrow(RangeError)
    expect(() => hashTag('')).toThrow(RangeError)
  })
})

describe('createRedis with REDIS_MODE=sentinel (TLS, ACL users on the nodes and on the sentinels)', () => {
  const SENTINEL_USER = 'sentinel-client'
  const SENTINEL_PASSWORD = 'sentinel-acl-password-1'
  let certs: TestCertificates
  let sentinel: RedisSentinelProcess

  beforeAll(async () => {
    certs = createTestCertificates()
    // Two replicas: after the first failover the other one follows the new master, ready for the planned one.
    sentinel = await startRedisSentinel({
      replicas: 2,
      sentinels: 2,
      tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile },
      users: { [USER]: PASSWORD },
      sentinelUser: { name: SENTINEL_USER, password: SENTINEL_PASSWORD },
    })
  })

  afterAll(async () => {
    await sentinel?.stop()
    certs?.remove()
  })

  const settings = (extra: Record<string, string> = {}) =>
    connection({
      REDIS_URL: sentinel.url,
      REDIS_MODE: 'sentinel',
      REDIS_SENTINELS: sentinel.sentinels,
      REDIS_SENTINEL_MASTER: sentinel.masterName,
      REDIS_SENTINEL_USERNAME: SENTINEL_USER,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
      REDIS_TLS_CA_FILE: certs.caFile,
      REDIS_USERNAME: USER,
      REDIS_PASSWORD: PASSWORD,
      ...extra,
    })

  it('finds the master through the sentinels over TLS and runs commands on it as the ACL user', async () => {
    const redis = createRedis(settings())
    try {
      expect(redis).not.toBeInstanceOf(Cluster)
      expect(await checkRedisAtStart(redis, settings())).toBe('ready')
      await redis.set('lookstream:test:sentinel', 'yes')
      expect(await redis.get('lookstream:test:sentinel')).toBe('yes')
      expect(await redis.call('ACL', 'WHOAMI')).toBe(USER)
      expect(((await redis.call('ROLE')) as string[])[0]).toBe('master')
      // The node it reached is the one the sentinels name as master.
      const [, tlsPort] = (await redis.call('CONFIG', 'GET', 'tls-port')) as [string, string]
      expect(Number(tlsPort)).toBe(await sentinel.masterPort())
    } finally {
      closed(redis)
    }
  })

  it('fails the start with LS_REDIS_AUTH_FAILED on a wrong sentinel password, naming the setting', async () => {
    const wrong = settings({ REDIS_SENTINEL_PASSWORD: 'not-the-sentinel-password' })
    const err = await startError(wrong)
    expect(err?.code).toBe('LS_REDIS_AUTH_FAILED')
    expect(err?.message).toContain('at the sentinels (WRONGPASS')
    expect(err?.message).toContain('REDIS_SENTINEL_PASSWORD')
    expect(err?.message).not.toContain('not-the-sentinel-password')
  })

  it("fails the start with LS_REDIS_TLS_FAILED when the sentinels' certificate is not trusted", async () => {
    const untrusted = settings({ REDIS_TLS_CA_FILE: certs.otherCaFile })
    const err = await startError(untrusted)
    expect(err?.code).toBe('LS_REDIS_TLS_FAILED')
    expect(err?.message).toContain('REDIS_TLS_CA_FILE')
  })

  it('fails the start with LS_REDIS_AUTH_FAILED on a wrong node password, naming the setting', async () => {
    const wrong = settings({ REDIS_PASSWORD: 'not-the-node-password' })
    const err = await startError(wrong)
    expect(err?.code).toBe('LS_REDIS_AUTH_FAILED')
    expect(err?.message).toContain('REDIS_PASSWORD')
    expect(err?.message).not.toContain('not-the-node-password')
  })

  it('follows a failover by itself: the master stopped, a replica promoted, writes resume on it', async () => {
    const redis = createRedis(settings(), { failFast: true, maxRetriesPerRequest: 1 })
    try {
      expect(await checkRedisAtStart(redis, settings())).toBe('ready')
      await redis.set('lookstream:test:before-failover', '1')
      // Replication is asynchronous: only a write the replicas acknowledged is sure to survive the failover.
      expect(await redis.call('WAIT', '2', '5000')).toBe(2)
      const oldPort = await sentinel.masterPort()
      await sentinel.nodes.find((n) => n.port === oldPort)!.stop()
      await waitFor(() => redis.status !== 'ready', { message: 'the client to notice the outage' })
      const newPort = await sentinel.waitForFailover(oldPort)
      expect(newPort).not.toBe(oldPort)
      expect(
        await waitFor(() => redis.set('lookstream:test:after-failover', '1').catch(() => null), {
          timeoutMs: 20_000,
          message: 'a write accepted after the failover',
        }),
      ).toBe('OK')
      expect(((await redis.call('ROLE')) as string[])[0]).toBe('master')
      // The promoted replica had the write made (and acknowledged) before the outage.
      expect(await redis.get('lookstream:test:before-failover')).toBe('1')
      // The old master comes back empty; the sentinels make it a replica of the new one.
      await sentinel.restartNode(oldPort)
      expect(await sentinel.masterPort()).toBe(newPort)
    } finally {
      closed(redis)
    }
  })

  /** The +switch-master announcements the sentinels make, heard on subscriptions of this test's own. */
  async function switchAnnouncements(): Promise<{
    sentinelsAnnouncing(name: string, port: number): number
    close(): void
  }> {
    const heard: { sentinel: number; message: string }[] = []
    const subscribers = sentinel.sentinelProcesses.map(
      (p) =>
        new Redis({
          host: '127.0.0.1',
          port: p.port,
          tls: { ca: [readFileSync(certs.caFile)] },
          username: SENTINEL_USER,
          password: SENTINEL_PASSWORD,
          maxRetriesPerRequest: 0,
        }),
    )
    subscribers.forEach((subscriber, i) =>
      subscriber.on('message', (_channel: string, message: string) => heard.push({ sentinel: i, message })),
    )
    await Promise.all(subscribers.map((subscriber) => subscriber.subscribe('+switch-master')))
    return {
      // "<name> <old ip> <old port> <new ip> <new port>"; a sentinel may also announce an earlier switch late.
      sentinelsAnnouncing: (name, port) =>
        new Set(
          heard
            .filter(({ message }) => message.startsWith(`${name} `) && message.endsWith(` 127.0.0.1 ${port}`))
            .map(({ sentinel }) => sentinel),
        ).size,
      close: () => subscribers.forEach((subscriber) => subscriber.disconnect()),
    }
  }

  const tlsPortOf = async (redis: RedisClient) =>
    Number(((await redis.call('CONFIG', 'GET', 'tls-port')) as [string, string])[1])

  it('follows a planned failover (SENTINEL FAILOVER) at once: no writes to the old master, still running, meanwhile', async () => {
    const redis = createRedis(settings(), { failFast: true, maxRetriesPerRequest: 1 })
    try {
      expect(await checkRedisAtStart(redis, settings())).toBe('ready')
      const oldPort = await tlsPortOf(redis)
      const newPort = await sentinel.failover()
      expect(newPort).not.toBe(oldPort)
      // The sentinels demote the old master only about 8 s after the switch: until then a client that stayed on it
      // would write to a master whose writes are thrown away. The switch is announced at once (+switch-master).
      // Every write is made only once the client is seen on the new master, so none can reach the old one.
      await waitFor(
        async () =>
          (await tlsPortOf(redis).catch(() => null)) === newPort &&
          (await redis.set('lookstream:test:planned-failover', '1').catch(() => null)) === 'OK',
        { timeoutMs: 4000, message: 'a write accepted by the client on the new master' },
      )
    } finally {
      closed(redis)
    }
  })

  it('takes a +switch-master announcement naming the master it is on already as no reason to reconnect', async () => {
    // Each sentinel announces a switch when it learns of it, and one that was slow or away does so late, after the
    // client has moved. The timing cannot be arranged from outside, so this asks the patched connector directly
    // (patches/ioredis@5.11.1.patch); the next test goes through the sentinels.
    const redis = createRedis(settings(), { failFast: true, maxRetriesPerRequest: 1 })
    try {
      expect(await checkRedisAtStart(redis, settings())).toBe('ready')
      const port = await tlsPortOf(redis)
      const { connector } = redis as unknown as { connector: { switchMovesConnection(message: unknown): boolean } }
      const name = sentinel.masterName
      expect(connector.switchMovesConnection(`${name} 127.0.0.1 1 127.0.0.1 ${port}`)).toBe(false)
      expect(connector.switchMovesConnection(`${name} 127.0.0.1 ${port} 127.0.0.1 1`)).toBe(true)
      expect(connector.switchMovesConnection(`${name} 127.0.0.1 1 127.0.0.2 ${port}`)).toBe(true)
      expect(connector.switchMovesConnection(`another-application 127.0.0.1 1 127.0.0.1 2`)).toBe(false)
      // What does not parse moves the client, as ioredis without the patch does.
      expect(connector.switchMovesConnection(`${name} 127.0.0.1`)).toBe(true)
      expect(connector.switchMovesConnection(undefined)).toBe(true)
      expect(await redis.ping()).toBe('PONG')
    } finally {
      closed(redis)
    }
  })

  it('stays on its master when the same sentinels fail over another master they watch', async () => {
    const other = await sentinel.watchAnotherMaster('another-application')
    const redis = createRedis(settings(), { failFast: true, maxRetriesPerRequest: 1 })
    const announcements = await switchAnnouncements()
    let reconnects = 0
    try {
      expect(await checkRedisAtStart(redis, settings())).toBe('ready')
      redis.on('close', () => (reconnects += 1))
      const port = await tlsPortOf(redis)
      const otherPort = await other.failover()
      await waitFor(
        () => announcements.sentinelsAnnouncing('another-application', otherPort) === sentinel.sentinelProcesses.length,
        { message: "every sentinel announcing the other master's switch" },
      )
      expect(await redis.set('lookstream:test:other-failover', '1')).toBe('OK')
      expect(await tlsPortOf(redis)).toBe(port)
      expect(reconnects).toBe(0)
    } finally {
      closed(redis)
      announcements.close()
    }
  })

  /**
   * A client on the master, made to reconnect with `asItTries` run as its next attempt starts (while it asks the
   * sentinels where the master is); resolves when ioredis ends it.
   */
  async function endedMidReconnect(asItTries: (redis: Redis) => void): Promise<Redis> {
    const redis = createRedis(settings(), { failFast: true, maxRetriesPerRequest: 1 }) as Redis
    expect(await checkRedisAtStart(redis, settings())).toBe('ready')
    const ended = new Promise<void>((resolve) => redis.once('end', () => resolve()))
    redis.once('connecting', () => asItTries(redis))
    redis.disconnect(true)
    await ended
    return redis
  }

  it('connects again when ioredis ends it mid-reconnect (the failover detector disconnecting while it asks the sentinels)', async () => {
    // What ioredis' failover detector does on +switch-master: the connector is disconnected. While the client is
    // between attempts to reach the master, ioredis then ends it for good ("Connection is closed.").
    const redis = await endedMidReconnect((client) =>
      (client as unknown as { connector: { disconnect(): void } }).connector.disconnect(),
    )
    try {
      await waitFor(async () => redis.status === 'ready' && (await redis.ping()) === 'PONG', {
        timeoutMs: 10_000,
        message: 'the client connected again',
      })
      expect(await redis.set('lookstream:test:after-unexpected-end', '1')).toBe('OK')
    } finally {
      closed(redis)
    }
  })

  it('stays closed when its owner closes it while it reconnects', async () => {
    const redis = await endedMidReconnect((client) => client.disconnect())
    // Past the longest reconnect delay (1 s): no new attempt was made.
    const reconnected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 1500)
      redis.once('connecting', () => {
        clearTimeout(timer)
        resolve(true)
      })
    })
    expect(reconnected).toBe(false)
    expect(redis.status).toBe('end')
  })
})
