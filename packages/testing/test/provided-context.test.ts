import { ListBucketsCommand } from '@aws-sdk/client-s3'
import { Redis } from 'ioredis'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, inject, it } from 'vitest'
import { s3Client } from '../src/index.ts'

const run = promisify(execFile)

describe('the global setup', () => {
  it('provides Kafka, Redis and S3 endpoints that answer', async () => {
    expect(inject('kafkaUnavailable')).toBe('')
    const { stdout } = await run('kcat', ['-b', inject('kafkaBrokers'), '-L', '-J', '-m', '10'])
    expect((JSON.parse(stdout) as { brokers: unknown[] }).brokers).toHaveLength(1)

    const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 0 })
    try {
      expect(await redis.ping()).toBe('PONG')
    } finally {
      redis.disconnect()
    }

    const s3 = s3Client(inject('s3Endpoint'))
    try {
      expect((await s3.send(new ListBucketsCommand({}))).$metadata.httpStatusCode).toBe(200)
    } finally {
      s3.destroy()
    }
  })

  it('says where each endpoint came from, following the environment it was given', () => {
    const expected = (name: string): string => (process.env[name] ? 'env' : 'local')
    const sources = inject('harnessSources')
    // Containers would only be used on a machine with a runtime; then 'testcontainers' is fine too.
    expect([expected('KAFKA_BROKERS'), 'testcontainers']).toContain(sources.kafka)
    expect([expected('REDIS_URL'), 'testcontainers']).toContain(sources.redis)
    expect([expected('S3_ENDPOINT'), 'testcontainers']).toContain(sources.s3)
    const distinct = new Set(Object.values(sources))
    expect(inject('harnessMode')).toBe(distinct.size === 1 ? [...distinct][0] : 'mixed')
  })
})
