import { mkdtempSync, rmSync } from 'node:fs'
import { type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HEADERS, TOPICS } from '@lookstream/events'
import { type LocalKafka } from '@lookstream/local-kafka'
import { waitFor } from '@lookstream/testing'
import { request } from 'undici'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { createTopics, post, startIngress, startKafka, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'
import { readTopic } from './support/read-topic.ts'

// This test stops and restarts its own broker, so it does not use the harness's Kafka.
// Kafka stopped in the middle of a send: the answer is success:false, and the accepted count is exactly
// what the broker holds after it comes back (nothing claimed that was not produced).

let kafka: LocalKafka | undefined
const redisUrl = inject('redisUrl')
let stub: LookerStub
let ingress: Ingress
const dataDir = mkdtempSync(join(tmpdir(), 'ingress-outage-'))

beforeAll(async () => {
  ;[kafka, stub] = await Promise.all([startKafka(dataDir), startLookerStub()])
  await createTopics(kafka.brokers)
  ingress = await startIngress({
    brokers: kafka.brokers,
    redisUrl,
    lookerHosts: stub.origin,
    kafkaRetries: 2,
  })
}, 120_000)

afterAll(async () => {
  await ingress?.close()
  await Promise.all([kafka?.stop(), stub?.close()])
  rmSync(dataDir, { recursive: true, force: true })
})

async function acceptedRows(): Promise<number> {
  const metric = await ingress.service.registry.getSingleMetric('lookstream_ingress_rows_total')?.get()
  return (metric?.values ?? []).filter((v) => v.labels.outcome === 'accepted').reduce((sum, v) => sum + v.value, 0)
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

it(
  'Kafka stopped midway ends in success:false counting only acknowledged rows; a send started while it is down sends nothing',
  { timeout: 180_000 },
  async () => {
    const row = (n: number) => JSON.stringify({ 'u.id': { value: `user-${n}` }, 'u.n': { value: n } })
    const firstPart = Array.from({ length: 50 }, (_, i) => row(i + 1)).join(',')
    const secondPart = Array.from({ length: 50 }, (_, i) => row(i + 51)).join(',')
    let resume!: () => void
    const resumed = new Promise<void>((resolve) => (resume = resolve))
    const url = stub.route('/download/outage', {
      kind: 'custom',
      handle: async (response: ServerResponse) => {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.write(
          `{"ran_at":"2026-11-22T00:00:00Z","fields":{"dimensions":[{"name":"u.id","tags":["user_id"]},{"name":"u.n"}]},"data":[${firstPart}`,
        )
        await resumed
        response.end(`,${secondPart}]}`)
      },
    })
    try {
      const pending = post(`${ingress.url}/actions/segment_identify/execute`, {
        type: 'query',
        scheduled_plan: { scheduled_plan_id: 31, download_url: url },
      })
      await until(async () => (await acceptedRows()) >= 50, 'the first 50 rows to be acknowledged')
      const port = kafka!.port
      await kafka!.stop()
      kafka = undefined
      resume()
      const answer = await pending
      const looker = answer.json.looker as {
        success: boolean
        message: string
        send_id: string
        rows: { received: number; accepted: number; rejected: number }
      }
      expect(looker.success).toBe(false)
      expect(looker.message).toContain('failed: Kafka did not acknowledge a message')
      expect(looker.rows.accepted).toBeGreaterThanOrEqual(50)
      expect(looker.rows.accepted).toBeLessThan(100)

      // A send that starts while Kafka is down sends no row and says so.
      const down = await post(`${ingress.url}/actions/segment_identify/execute`, {
        type: 'query',
        scheduled_plan: { scheduled_plan_id: 32 },
        attachment: {
          mimetype: 'application/json',
          data: `{"fields":{"dimensions":[{"name":"u.id","tags":["user_id"]}]},"data":[${row(1)}]}`,
        },
      })
      expect(down.json.looker).toMatchObject({
        success: false,
        message: expect.stringContaining('Kafka did not acknowledge the send announcement') as unknown,
        rows: { received: 0, accepted: 0, rejected: 0 },
      })
      const downSendId = (down.json.looker as { send_id: string }).send_id

      // Readiness covers Kafka: with the broker down, /readyz fails on it.
      const ready = await request(`${ingress.url}/readyz`)
      const report = (await ready.body.json()) as { checks: Record<string, { status: string }> }
      expect(ready.statusCode).toBe(503)
      expect(report.checks.kafka?.status).toBe('fail')

      // Bring the broker back on its data and count what it really holds for this send.
      kafka = await startKafka(dataDir, port)
      const held = (await readTopic(kafka.brokers, TOPICS.identify)).filter(
        (r) => r.headers[HEADERS.sendId] === looker.send_id,
      )
      expect(held.length).toBeGreaterThanOrEqual(looker.rows.accepted)
      const rows = new Set(
        held.map((r) => (JSON.parse(r.value) as { context: { lookstream: { row: number } } }).context.lookstream.row),
      )
      for (let n = 1; n <= looker.rows.accepted; n++) expect(rows.has(n), `row ${n} on Kafka`).toBe(true)

      // Both sends get their finished event once Kafka is back (retried in the background), and /readyz recovers.
      const brokers = kafka.brokers
      const phasesOf = async (sendId: string) =>
        (await readTopic(brokers, TOPICS.sends))
          .filter((record) => record.key === sendId)
          .map((record) => (JSON.parse(record.value) as { phase: string; status: string }).phase)
      await waitFor(async () => (await phasesOf(looker.send_id)).includes('finished'), {
        timeoutMs: 90_000,
        intervalMs: 500,
        message: 'the finished event of the send Kafka failed in',
      })
      await waitFor(async () => (await phasesOf(downSendId)).includes('finished'), {
        timeoutMs: 90_000,
        intervalMs: 500,
        message: 'the finished event of the send started while Kafka was down',
      })
      expect(await phasesOf(looker.send_id)).toEqual(['started', 'finished'])
      await waitFor(
        async () => {
          const response = await request(`${ingress.url}/readyz`)
          await response.body.dump()
          return response.statusCode === 200
        },
        {
          timeoutMs: 30_000,
          message: '/readyz to recover',
        },
      )
    } finally {
      resume()
    }
  },
)
