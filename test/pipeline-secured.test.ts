import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { identifyLook } from './support/looks.ts'
import { startPipeline, waitForAccepted, type Pipeline } from './support/pipeline.ts'

// The pipeline on production-like transports: local-kafka speaking SASL_SSL (SCRAM-SHA-512) and redis-server
// with TLS and an ACL user, the services configured with the matching settings and passwords in files.

const INGRESS_MAIN = fileURLToPath(new URL('../services/ingress/src/main.ts', import.meta.url))
const SEGMENT_MAIN = fileURLToPath(new URL('../services/segment/src/main.ts', import.meta.url))

let pipeline: Pipeline

beforeAll(async () => {
  pipeline = await startPipeline({ secure: true })
  await pipeline.startSegment()
}, 120_000)

afterAll(async () => {
  await pipeline?.stop()
}, 60_000)

/** Runs a service entry point that is expected to stop at start; resolves with its exit code and output. */
function runToExit(
  entry: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@lookstream/source', entry], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${entry} did not exit within 60 s; stderr: ${stderr}`))
    }, 60_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stderr, stdout })
    })
  })
}

describe('secured pipeline (SASL_SSL Kafka, TLS + ACL Redis)', () => {
  it('delivers a Looker send end to end to the Segment simulator', async () => {
    expect(pipeline.securityEnv.KAFKA_SECURITY_PROTOCOL).toBe('SASL_SSL')
    expect(pipeline.redis.url).toMatch(/^rediss:\/\//)
    const prefix = `s${randomUUID().slice(0, 8)}`
    const look = identifyLook({ prefix, rows: 6 })
    const sent = await pipeline.execute({ look: look.body, mode: 'pushed', scheduledPlanId: 7001 })
    expect(sent.status).toBe(200)
    expect(sent.looker.rows).toEqual({ received: 6, accepted: 6, rejected: 0 })
    await waitForAccepted(pipeline.simulator, prefix, 6, 60_000)
  })

  const wrongPassword = 'wrong-password-do-not-print'

  it('the segment service exits at start with one line naming the Kafka settings when Kafka refuses it', async () => {
    const env = pipeline.segmentEnv({ KAFKA_SASL_PASSWORD_FILE: '', KAFKA_SASL_PASSWORD: wrongPassword })
    const out = await runToExit(SEGMENT_MAIN, env)
    expect(out.code).toBe(1)
    const lines = out.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^segment: not started: LS_KAFKA_AUTH_FAILED: Kafka refused the SASL credentials .*KAFKA_SASL_PASSWORD/,
    )
    expect(out.stderr + out.stdout).not.toContain(wrongPassword)
  })

  it('the segment service exits at start with one line naming the Redis settings when Redis refuses it', async () => {
    const env = pipeline.segmentEnv({ REDIS_PASSWORD_FILE: '', REDIS_PASSWORD: wrongPassword })
    const out = await runToExit(SEGMENT_MAIN, env)
    expect(out.code).toBe(1)
    const lines = out.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^segment: not started: LS_REDIS_AUTH_FAILED: .*REDIS_PASSWORD/)
    expect(out.stderr + out.stdout).not.toContain(wrongPassword)
  })

  it('the ingress exits at start with one line naming the Kafka settings when Kafka refuses it', async () => {
    const env = {
      ...pipeline.segmentEnv(),
      ACTION_HUB_SECRET: 'x'.repeat(32),
      LOOKER_HOSTS: pipeline.looker.origin,
      KAFKA_SASL_PASSWORD_FILE: '',
      KAFKA_SASL_PASSWORD: wrongPassword,
    }
    const out = await runToExit(INGRESS_MAIN, env)
    expect(out.code).toBe(1)
    const lines = out.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^LS_KAFKA_AUTH_FAILED: Kafka refused the SASL credentials .*KAFKA_SASL_PASSWORD/)
    expect(out.stderr + out.stdout).not.toContain(wrongPassword)
  })

  it('the ingress exits at start with one line naming the Redis settings when Redis refuses it', async () => {
    const env = {
      ...pipeline.segmentEnv(),
      ACTION_HUB_SECRET: 'x'.repeat(32),
      LOOKER_HOSTS: pipeline.looker.origin,
      REDIS_PASSWORD_FILE: '',
      REDIS_PASSWORD: wrongPassword,
    }
    const out = await runToExit(INGRESS_MAIN, env)
    expect(out.code).toBe(1)
    const lines = out.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^LS_REDIS_AUTH_FAILED: .*REDIS_PASSWORD/)
    expect(out.stderr + out.stdout).not.toContain(wrongPassword)
  })
})
