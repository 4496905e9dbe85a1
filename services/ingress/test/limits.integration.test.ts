import { request as httpRequest, type IncomingMessage } from 'node:http'
import { type ServerResponse } from 'node:http'
import { startRedis, type RedisProcess } from '@lookstream/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { request } from 'undici'
import { AUTH, createTopics, post, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'
import { withoutSendPointer } from './support/verdict.ts'

// Deadlines, byte caps, the send slot and Redis timeouts: every send ends within its bounds and says what happened.

const kafka = { brokers: inject('kafkaBrokers') }
let stub: LookerStub
let redis: RedisProcess | undefined
let ingress: Ingress

const DEADLINE_MS = 1500
const RESULT_CAP = 4096

beforeAll(async () => {
  ;[stub, redis] = await Promise.all([startLookerStub(), startRedis()])
  await createTopics(kafka.brokers)
  ingress = await startIngress({
    brokers: kafka.brokers,
    redisUrl: redis.url,
    lookerHosts: stub.origin,
    env: {
      SEND_DEADLINE_MS: String(DEADLINE_MS),
      MAX_RESULT_BYTES: String(RESULT_CAP),
      MAX_CONCURRENT_SENDS: '1',
      REDIS_COMMAND_TIMEOUT_MS: '300',
    },
  })
}, 120_000)

afterAll(async () => {
  await ingress?.close()
  await Promise.all([stub?.close(), redis?.stop()])
})

interface Looker {
  success: boolean
  message: string
  send_id: string
  rows: { received: number; accepted: number; rejected: number }
}

const HEAD = '{"fields":{"dimensions":[{"name":"u.id","tags":["user_id"]}]},"data":['
const row = (n: number) => `{"u.id":{"value":"user-${n}"}}`
const failed = (failure: string, accepted: number, received: number) =>
  `Send to Segment Identify (connection default) failed: ${failure}. ${accepted} of ${received} rows accepted (acknowledged by Kafka), 0 rejected.`

async function executeUrl(url: string, planId: number) {
  const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
    type: 'query',
    scheduled_plan: { scheduled_plan_id: planId, download_url: url },
  })
  return withoutSendPointer(answer.json.looker as unknown as Looker)
}

describe('send bounds', () => {
  it('stops a trickling download at the send deadline and answers with what was sent', async () => {
    const first = `${HEAD}${row(1)},`
    let stop!: () => void
    const stopped = new Promise<void>((resolve) => (stop = resolve))
    const url = stub.route('/download/trickle', {
      kind: 'custom',
      handle: async (response: ServerResponse) => {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.write(first)
        await stopped // never sends the rest while the send is running
        response.destroy()
      },
    })
    const started = performance.now()
    const looker = await executeUrl(url, 41)
    stop()
    expect(performance.now() - started).toBeLessThan(DEADLINE_MS + 5000)
    expect(looker).toMatchObject({
      success: false,
      message: failed(
        `the send passed its ${DEADLINE_MS} ms deadline (SEND_DEADLINE_MS) after 1 rows (${Buffer.byteLength(first)} bytes read); the rest of the result was not read`,
        1,
        1,
      ),
    })
  })

  it('stops reading a result over MAX_RESULT_BYTES', async () => {
    const rows = Array.from({ length: 400 }, (_, i) => row(i + 1))
    const body = `${HEAD}${rows.join(',')}]}`
    expect(Buffer.byteLength(body)).toBeGreaterThan(RESULT_CAP)
    const url = stub.route('/download/big', { kind: 'body', body })
    const looker = await executeUrl(url, 42)
    const match = /reading stopped after (\d+) bytes and row (\d+)\. (\d+) of (\d+) rows accepted/.exec(looker.message)
    expect(looker.success).toBe(false)
    expect(looker.message).toBe(
      failed(
        `the result is over the ${RESULT_CAP}-byte limit (MAX_RESULT_BYTES); reading stopped after ${match?.[1]} bytes and row ${match?.[2]}`,
        looker.rows.accepted,
        looker.rows.received,
      ),
    )
    expect(Number(match?.[1])).toBeGreaterThan(RESULT_CAP)
    expect(looker.rows.received).toBeLessThan(400)
  })

  it('stops reading an endless row at MAX_RESULT_BYTES, not at the deadline', async () => {
    // One row that never ends completes no item, so no batch reaches the send's byte check.
    let written = 0
    const url = stub.route('/download/endless-row', {
      kind: 'custom',
      handle: (response: ServerResponse) => {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.write(`${HEAD}{"u.id":{"value":"`)
        const pad = Buffer.alloc(1024, 0x61)
        const more = () => {
          while (!response.destroyed && written < 1 << 30) {
            written += pad.length
            if (!response.write(pad)) return void response.once('drain', more)
          }
        }
        more()
      },
    })
    const looker = await executeUrl(url, 43)
    expect(looker.success).toBe(false)
    expect(looker.message).toMatch(
      new RegExp(
        `^Send to Segment Identify \\(connection default\\) failed: the result is over the ${RESULT_CAP}-byte limit \\(MAX_RESULT_BYTES\\); reading stopped after \\d+ bytes and row 1\\. 0 of 0 rows accepted`,
      ),
    )
  })

  it('answers a trickling upload at the send deadline with a looker body', async () => {
    const started = performance.now()
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(`${ingress.url}/actions/segment_identify/execute`, {
        method: 'POST',
        headers: { authorization: AUTH, 'content-type': 'application/json', 'content-length': '100000' },
      })
      req.on('response', (response: IncomingMessage) => {
        const parts: Buffer[] = []
        response.on('data', (part: Buffer) => parts.push(part))
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(parts).toString() })
          req.destroy()
        })
      })
      req.on('error', reject)
      req.write('{"type":"query","attachment":{"data":"')
    })
    expect(performance.now() - started).toBeGreaterThanOrEqual(DEADLINE_MS - 50)
    expect(answer.status).toBe(408)
    expect(JSON.parse(answer.text)).toEqual({
      looker: {
        success: false,
        message: `The execute body did not arrive within the ${DEADLINE_MS} ms send deadline (SEND_DEADLINE_MS).`,
      },
    })
  })

  it('refuses a send before reading its body when no send slot is free', async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let streaming!: () => void
    const isStreaming = new Promise<void>((resolve) => (streaming = resolve))
    const url = stub.route('/download/hold', {
      kind: 'custom',
      handle: async (response: ServerResponse) => {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.write(`${HEAD}${row(1)}`)
        streaming()
        await released
        response.end(']}')
      },
    })
    const holding = executeUrl(url, 43)
    await isStreaming
    // A 60 MB push of which only the first kilobyte is ever sent: the answer must come without the rest.
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(`${ingress.url}/actions/segment_identify/execute`, {
        method: 'POST',
        headers: {
          authorization: AUTH,
          'content-type': 'application/json',
          'content-length': String(60 * 1024 * 1024),
        },
      })
      req.on('response', (response: IncomingMessage) => {
        const parts: Buffer[] = []
        response.on('data', (part: Buffer) => parts.push(part))
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(parts).toString() })
          req.destroy()
        })
      })
      req.on('error', reject)
      req.write(`{"type":"query","attachment":{"mimetype":"application/json","data":"${'x'.repeat(1024)}`)
    })
    release()
    expect(answer.status).toBe(503)
    expect(JSON.parse(answer.text)).toEqual({
      looker: { success: false, message: 'lookstream is already running 1 sends (MAX_CONCURRENT_SENDS); retry later.' },
    })
    expect((await holding).success).toBe(true)
  })
})

describe('Redis stopped', () => {
  it('answers GET /sends with 503, and a running send finishes saying its record is incomplete', async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let streaming!: () => void
    const isStreaming = new Promise<void>((resolve) => (streaming = resolve))
    const url = stub.route('/download/redis-stops', {
      kind: 'custom',
      handle: async (response: ServerResponse) => {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.write(`${HEAD}${row(1)}`)
        streaming()
        await released
        response.end(`,${row(2)}]}`)
      },
    })
    const running = executeUrl(url, 44)
    await isStreaming
    await redis!.stop()
    redis = undefined

    const started = performance.now()
    const list = await request(`${ingress.url}/sends`, { headers: { authorization: AUTH } })
    const listed = (await list.body.json()) as { success: boolean; error: string }
    expect(performance.now() - started).toBeLessThan(5000)
    expect(list.statusCode).toBe(503)
    expect(listed.success).toBe(false)
    expect(listed.error).toMatch(/^The send store \(Redis\) did not answer: /)

    release()
    const looker = await running
    expect(looker.success).toBe(true)
    expect(looker.message).toMatch(
      new RegExp(
        `^Sent to Segment Identify \\(connection default\\): 2 of 2 rows accepted \\(acknowledged by Kafka\\), 0 rejected\\. The send's record in Redis \\(GET /sends/${looker.send_id}\\) is incomplete: .+\\.$`,
      ),
    )

    // Readiness leaves Redis out (the ingress answers Looker itself); its gauge says Redis is away.
    const ready = await request(`${ingress.url}/readyz`)
    expect(ready.statusCode).toBe(200)
    const metrics = await (await request(`${ingress.url}/metrics`)).body.text()
    expect(metrics).toMatch(/^lookstream_ingress_redis_available(\{[^}]*\})? 0$/m)
  })
})
