import { GetObjectCommand, CreateBucketCommand } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { Redis } from 'ioredis'
import { createServer, connect } from 'node:net'
import { Readable } from 'node:stream'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  freePort,
  isAlive,
  s3Client,
  spawnService,
  startRedis,
  startRedisSentinel,
  startS3,
  uniqueGroup,
  uniqueTopic,
  waitFor,
} from '../src/index.ts'

const tinyService = new URL('./fixtures/tiny-service.ts', import.meta.url).pathname

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
  })
}

describe('unique names', () => {
  it('uniqueTopic and uniqueGroup keep the prefix and never repeat', () => {
    const topics = new Set(Array.from({ length: 100 }, () => uniqueTopic('lookstream.test')))
    expect(topics.size).toBe(100)
    for (const topic of topics) expect(topic).toMatch(/^lookstream\.test\.[0-9a-f-]{36}$/)
    expect(uniqueGroup('segment')).toMatch(/^segment-[0-9a-f-]{36}$/)
    expect(uniqueGroup('segment')).not.toBe(uniqueGroup('segment'))
  })
})

describe('freePort', () => {
  it('returns a port that can be bound on 127.0.0.1', async () => {
    const port = await freePort()
    expect(port).toBeGreaterThan(0)
    const server = createServer()
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve))
    await new Promise((resolve) => server.close(resolve))
  })
})

describe('waitFor', () => {
  it('resolves with the first truthy value of the condition', async () => {
    let calls = 0
    const value = await waitFor(() => (++calls >= 3 ? { calls } : false), { intervalMs: 1 })
    expect(value).toEqual({ calls: 3 })
  })

  it('treats a throwing condition as not yet and reports its last error on timeout', async () => {
    const started = performance.now()
    await expect(
      waitFor(
        () => {
          throw new Error('still down')
        },
        { timeoutMs: 150, intervalMs: 10, message: 'the broker' },
      ),
    ).rejects.toThrow('timed out after 150 ms waiting for the broker: still down')
    expect(performance.now() - started).toBeGreaterThanOrEqual(145)
  })
})

describe('startRedis', () => {
  it('starts its own redis-server on 127.0.0.1 and stops it by PID', async () => {
    const redis = await startRedis()
    onTestFinished(() => redis.stop())
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`)
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 })
    await client.connect()
    await client.set('k', 'v')
    expect(await client.get('k')).toBe('v')
    expect(await client.config('GET', 'save')).toEqual(['save', ''])
    client.disconnect()

    await redis.stop()
    expect(isAlive(redis.pid)).toBe(false)
    expect(await refused(redis.port)).toBe(true)
  })

  it('passes extra arguments to redis-server', async () => {
    const redis = await startRedis({ args: ['--maxmemory', '12mb'] })
    onTestFinished(() => redis.stop())
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0 })
    onTestFinished(() => client.disconnect())
    expect(await client.config('GET', 'maxmemory')).toEqual(['maxmemory', String(12 * 1024 * 1024)])
  })
})

describe('startRedisSentinel', () => {
  it('starts a master, a replica and redis-server --sentinel processes on 127.0.0.1, and stops every one by PID', async () => {
    const sentinel = await startRedisSentinel({ replicas: 1, sentinels: 2 })
    onTestFinished(() => sentinel.stop())
    const [master, replica] = sentinel.nodes
    expect(await sentinel.masterPort()).toBe(master!.port)
    expect(sentinel.sentinels).toBe(sentinel.sentinelProcesses.map((s) => `127.0.0.1:${s.port}`).join(','))
    const client = new Redis(master!.url, { maxRetriesPerRequest: 0 })
    onTestFinished(() => client.disconnect())
    await client.set('k', 'replicated')
    expect(await client.call('WAIT', '1', '5000')).toBe(1)
    const onReplica = new Redis(replica!.url, { maxRetriesPerRequest: 0 })
    onTestFinished(() => onReplica.disconnect())
    expect(await onReplica.get('k')).toBe('replicated')
    expect(((await onReplica.call('ROLE')) as string[])[0]).toBe('slave')
    const asSentinel = new Redis(sentinel.sentinelProcesses[0]!.url, { maxRetriesPerRequest: 0 })
    onTestFinished(() => asSentinel.disconnect())
    expect(((await asSentinel.call('SENTINEL', 'SENTINELS', sentinel.masterName)) as unknown[]).length).toBe(1)

    const processes = [...sentinel.nodes, ...sentinel.sentinelProcesses]
    await sentinel.stop()
    for (const p of processes) {
      expect(isAlive(p.pid)).toBe(false)
      expect(await refused(p.port)).toBe(true)
    }
  })
})

describe('startS3', () => {
  it('runs s3rver in a child process that the AWS SDK uploads to and reads from', async () => {
    const s3 = await startS3()
    onTestFinished(() => s3.stop())
    expect(s3.endpoint).toBe(`http://127.0.0.1:${s3.port}`)
    const client = s3Client(s3.endpoint)
    onTestFinished(() => client.destroy())
    await client.send(new CreateBucketCommand({ Bucket: 'harness-test' }))
    // A stream of unknown length needs lib-storage's Upload (PutObject cannot size it).
    await new Upload({
      client,
      params: { Bucket: 'harness-test', Key: 'a/b.csv', Body: Readable.from(['user_id\n', 'u1\n']) },
    }).done()
    const object = await client.send(new GetObjectCommand({ Bucket: 'harness-test', Key: 'a/b.csv' }))
    expect(await object.Body?.transformToString()).toBe('user_id\nu1\n')

    await s3.stop()
    expect(isAlive(s3.pid)).toBe(false)
  })
})

describe('spawnService', () => {
  it('waits for the listen line and a 200 from /readyz, passes env, and stops the process by PID', async () => {
    const service = await spawnService(tinyService, { READY_AFTER_MS: '300', GREETING: 'hello' })
    onTestFinished(async () => {
      await service.stop('SIGKILL')
    })
    expect(service.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await fetch(`${service.url}/readyz`)).status).toBe(200)

    const exit = await service.stop()
    expect(exit).toEqual({ code: 0, signal: null })
    expect(isAlive(service.pid)).toBe(false)
    expect(service.logs()).toContainEqual({ msg: 'bye', greeting: 'hello' })
  })

  it('with a fixed PORT needs no listen line and polls /readyz on that port', async () => {
    const port = await freePort()
    const service = await spawnService(tinyService, { PORT: String(port), QUIET: '1' })
    onTestFinished(async () => {
      await service.stop('SIGKILL')
    })
    expect(service.url).toBe(`http://127.0.0.1:${port}`)
    expect(service.logs()).toEqual([])
    expect((await service.stop()).code).toBe(0)
  })

  it('fails with the process output when the entry point dies before it is ready', async () => {
    await expect(spawnService(new URL('./fixtures/missing.ts', import.meta.url).pathname)).rejects.toThrow(
      /exited with code 1 before it was ready; output:\n.*Cannot find module/s,
    )
  })
})
