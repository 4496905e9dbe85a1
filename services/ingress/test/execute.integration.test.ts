import { decodeSendEvent, HEADERS, sendRecordKey, TOPICS } from '@lookstream/events'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { findAction } from '../src/actions/index.ts'
import { createTopics, post, startIngress, TOKEN, SECRET, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'
import { looks, RAN_AT_ISO, renderLook, type LookFixture, type LookFormat } from './support/looks.ts'
import { readTopic, type TopicRecord } from './support/read-topic.ts'

// Kafka and Redis come from the test harness (packages/testing globalSetup).
const kafka = { brokers: inject('kafkaBrokers') }
const redisUrl = inject('redisUrl')
let stub: LookerStub
let ingress: Ingress

beforeAll(async () => {
  stub = await startLookerStub()
  await createTopics(kafka.brokers)
  ingress = await startIngress({
    brokers: kafka.brokers,
    redisUrl,
    lookerHosts: `looker.example.com, ${stub.origin}`,
  })
}, 120_000)

afterAll(async () => {
  await ingress?.close()
  await stub?.close()
})

const MESSAGE_TOPICS = [TOPICS.identify, TOPICS.track, TOPICS.group]

async function messagesOf(sendId: string): Promise<TopicRecord[]> {
  const all = (await Promise.all(MESSAGE_TOPICS.map((topic) => readTopic(kafka.brokers, topic)))).flat()
  return all.filter((record) => record.headers[HEADERS.sendId] === sendId)
}

function executeBody(look: LookFixture, planId: number, source: { url: string } | { data: string; mimetype: string }) {
  return {
    type: 'query',
    scheduled_plan: {
      scheduled_plan_id: planId,
      title: 'Test Look',
      type: 'Look',
      url: 'https://looker.example.com/looks/42',
      query: { fields: [], vis_config: {} },
      download_url: 'url' in source ? source.url : null,
    },
    attachment: 'data' in source ? { mimetype: source.mimetype, extension: 'json', data: source.data } : null,
    data: {},
    form_params: look.form,
  }
}

type Variant = { format: LookFormat; delivery: 'streamed' | 'pushed' | 'pushed-base64' }
const variants: Variant[] = [
  { format: 'json_detail_lite_stream', delivery: 'streamed' },
  { format: 'json_detail', delivery: 'streamed' },
  { format: 'json_detail_lite_stream', delivery: 'pushed' },
  { format: 'json_detail', delivery: 'pushed-base64' },
]

function sourceFor(look: LookFixture, variant: Variant, path: string) {
  const text = renderLook(look, variant.format)
  if (variant.delivery === 'streamed') return { url: stub.route(path, { kind: 'body', body: text }) }
  if (variant.delivery === 'pushed') return { data: text, mimetype: 'application/json' }
  return { data: Buffer.from(text).toString('base64'), mimetype: 'application/json;base64' }
}

// messageIds per action, across the four variants: the same plan and ran_at must give the same ids.
const idsByAction = new Map<string, string[][]>()

describe.each(looks)('$action', (look) => {
  const action = findAction(look.action)!

  it.each(variants)('$format $delivery produces exactly the expected messages', async (variant) => {
    const path = `/download/${look.action}/${variant.format}/${variant.delivery}`
    const answer = await post(
      `${ingress.url}/actions/${look.action}/execute`,
      executeBody(look, 4200, sourceFor(look, variant, path)),
      {
        'user-agent': 'LookerOutgoingWebhook/7.3.00004561',
        'x-looker-webhook-id': `wh-${variant.format}-${variant.delivery}`,
      },
    )
    expect(answer.status).toBe(200)
    const looker = answer.json.looker as {
      success: boolean
      message: string
      send_id: string
      rows: { received: number; accepted: number; rejected: number }
      rejected_rows: { row: number; reason: string }[]
    }
    expect(looker.rows).toEqual({
      received: look.rows.length,
      accepted: look.expected.length,
      rejected: look.rejected.length,
    })
    expect(looker.rejected_rows).toEqual(look.rejected)
    expect(looker.success).toBe(look.rejected.length === 0)
    expect(looker.message).toContain(`${look.expected.length} of ${look.rows.length} rows accepted`)
    if (variant.delivery === 'streamed') expect(stub.hits(path)).toBe(1)

    const records = await messagesOf(looker.send_id)
    const parsed = records
      .map((record) => ({
        record,
        message: JSON.parse(record.value) as Record<string, unknown> & { context: { lookstream: { row: number } } },
      }))
      .sort((a, b) => a.message.context.lookstream.row - b.message.context.lookstream.row)
    expect(parsed).toHaveLength(look.expected.length)
    const ids: string[] = []
    parsed.forEach(({ record, message }, index) => {
      const expected = look.expected[index]!
      const { messageId, timestamp, context, ...rest } = message as Record<string, unknown> & {
        messageId: string
        timestamp: string
        context: { lookstream: unknown } & Record<string, unknown>
      }
      const { lookstream, ...otherContext } = context
      expect(lookstream).toEqual({ sendId: looker.send_id, row: expected.row, action: look.action })
      expect(timestamp).toBe(RAN_AT_ISO)
      expect(messageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      ids.push(messageId)
      const actual = Object.keys(otherContext).length === 0 ? rest : { ...rest, context: otherContext }
      expect(actual).toEqual(expected.message)
      expect(record.topic).toBe(expected.topic)
      expect(record.key).toBe(expected.key)
      expect(record.headers[HEADERS.destinations]).toBe(action.destination)
      expect(record.headers[HEADERS.producer]).toBe('ingress')
    })
    expect(new Set(ids).size).toBe(ids.length)
    const seen = idsByAction.get(look.action) ?? []
    seen.push(ids)
    idsByAction.set(look.action, seen)
    for (const other of seen) expect(other).toEqual(ids)
  })
})

describe('idempotence', () => {
  it('executing the same streamed send twice yields identical messageIds', async () => {
    const look = looks[0]!
    const url = stub.route('/download/twice', { kind: 'body', body: renderLook(look, 'json_detail_lite_stream') })
    const body = executeBody(look, 777, { url })
    const first = await post(`${ingress.url}/actions/${look.action}/execute`, body)
    const second = await post(`${ingress.url}/actions/${look.action}/execute`, body)
    const idsOf = async (answer: typeof first) => {
      const sendId = (answer.json.looker as { send_id: string }).send_id
      return (await messagesOf(sendId)).map((r) => (JSON.parse(r.value) as { messageId: string }).messageId).sort()
    }
    const [a, b] = await Promise.all([idsOf(first), idsOf(second)])
    expect(a).toHaveLength(look.expected.length)
    expect(b).toEqual(a)
    // Another run of the plan (a new ran_at) gets new ids.
    const nextRun = renderLook(look, 'json_detail_lite_stream').replace(
      /"ran_at":"[^"]+"/,
      '"ran_at":"2026-11-21T06:00:00+00:00"',
    )
    const third = await post(
      `${ingress.url}/actions/${look.action}/execute`,
      executeBody(look, 777, { url: stub.route('/download/next-run', { kind: 'body', body: nextRun }) }),
    )
    const c = await idsOf(third)
    expect(c).toHaveLength(a.length)
    expect(c.filter((id) => a.includes(id))).toEqual([])
  })
})

describe('sends that fail say so precisely and claim nothing unproduced', () => {
  const look = looks.find((l) => l.action === 'segment_identify')!

  it('refuses a download_url outside LOOKER_HOSTS', async () => {
    for (const url of [
      'https://evil.example.com/q/1',
      `http://looker.example.com/q/1`,
      `http://127.0.0.1:${stub.port + 1}/q/1`,
    ]) {
      const answer = await post(`${ingress.url}/actions/${look.action}/execute`, executeBody(look, 1, { url }))
      expect(answer.json.looker).toMatchObject({
        success: false,
        message: expect.stringContaining('is not in LOOKER_HOSTS.') as unknown,
      })
    }
  })

  it('fails when Looker answers the download_url with an error status, without parsing it as data', async () => {
    const url = stub.route('/download/error', { kind: 'body', status: 500, body: '{"data":[{"x":1}],"fields":{}}' })
    const answer = await post(`${ingress.url}/actions/${look.action}/execute`, executeBody(look, 2, { url }))
    expect(answer.json.looker).toMatchObject({
      success: false,
      message: expect.stringContaining('failed: Looker answered the download_url with HTTP 500.') as unknown,
      rows: { received: 0, accepted: 0, rejected: 0 },
    })
  })

  it('reports JSON that breaks off mid-stream, counting only the rows Kafka acknowledged', async () => {
    const text = renderLook(look, 'json_detail_lite_stream')
    const cutAt = text.lastIndexOf('{"members.mail"') + 10 // inside row 3
    const url = stub.route('/download/broken', { kind: 'break', body: text, cutAt })
    const answer = await post(`${ingress.url}/actions/${look.action}/execute`, executeBody(look, 3, { url }))
    const looker = answer.json.looker as {
      success: boolean
      message: string
      send_id: string
      rows: { accepted: number }
    }
    expect(looker.success).toBe(false)
    expect(looker.message).toMatch(
      /failed: (Looker result is incomplete: the result broke off inside row 3 of "data", after 2 complete rows|the download from Looker broke off after 2 rows \(\d+ bytes read\): other side closed)\./,
    )
    expect(looker.rows.accepted).toBe(2)
    expect(await messagesOf(looker.send_id)).toHaveLength(2)
  })

  it('fails a Look without the required tag before producing anything', async () => {
    const untagged = { fields: { dimensions: [{ name: 'a.b', tags: [] }] }, rows: [{ 'a.b': { value: 1 } }] }
    const url = stub.route('/download/untagged', { kind: 'body', body: renderLook(untagged, 'json_detail') })
    const answer = await post(`${ingress.url}/actions/braze/execute`, executeBody({ ...look, form: {} }, 4, { url }))
    const looker = answer.json.looker as {
      success: boolean
      message: string
      send_id: string
      rows: { accepted: number }
    }
    expect(looker.success).toBe(false)
    expect(looker.message).toContain('failed: Query requires a field tagged braze_id.')
    expect(looker.rows.accepted).toBe(0)
    expect(await messagesOf(looker.send_id)).toHaveLength(0)
  })

  it('records sends in Redis and announces start and finish on lookstream.sends.v1', async () => {
    const url = stub.route('/download/recorded', { kind: 'body', body: renderLook(look, 'json_detail') })
    const answer = await post(`${ingress.url}/actions/${look.action}/execute`, executeBody(look, 5, { url }), {
      'x-looker-webhook-id': 'wh-recorded',
    })
    const sendId = (answer.json.looker as { send_id: string }).send_id
    const { request } = await import('undici')
    const fetchJson = async (path: string, auth = true) => {
      const response = await request(`${ingress.url}${path}`, {
        headers: auth ? { authorization: `Token token="${TOKEN}"` } : {},
      })
      return { status: response.statusCode, json: (await response.body.json()) as Record<string, unknown> }
    }
    await ingress.redis.hincrby(sendRecordKey(sendId), 'delivered', 2)
    const one = await fetchJson(`/sends/${sendId}`)
    expect(one.status).toBe(200)
    expect(one.json).toMatchObject({
      sendId,
      action: 'segment_identify',
      destination: 'segment',
      connection: 'default',
      lookId: '42',
      scheduledPlanId: '5',
      webhookId: 'wh-recorded',
      status: 'succeeded',
      received: 3,
      accepted: 2,
      rejected: 1,
      rejectReasons: look.rejected,
      delivered: 2,
    })
    expect((await fetchJson(`/sends/${sendId}`, false)).status).toBe(403)
    const list = await fetchJson('/sends?limit=200')
    expect((list.json.sends as { sendId: string }[]).map((s) => s.sendId)).toContain(sendId)
    expect((await fetchJson('/sends/nope')).status).toBe(404)

    const records = (await readTopic(kafka.brokers, TOPICS.sends)).filter((r) => r.key === sendId)
    // Both announcements satisfy the public SendEvent schema.
    for (const record of records) expect(decodeSendEvent(record.value)).toMatchObject({ ok: true })
    const events = records.map(
      (r) => JSON.parse(r.value) as { phase: string; counts: Record<string, number>; status: string },
    )
    expect(events.map((e) => e.phase)).toEqual(['started', 'finished'])
    expect(events[1]).toMatchObject({ status: 'succeeded', counts: { received: 3, accepted: 2, rejected: 1 } })
  })

  it('never logs the token, the secret or row values', () => {
    const logs = ingress.logs.join('')
    expect(logs).toContain('send finished')
    for (const secret of [TOKEN, SECRET, 'kim@example.net', 'lee@example.net', 'gold'])
      expect(logs).not.toContain(secret)
  })
})
