import { createHmac } from 'node:crypto'
import { type ServerResponse } from 'node:http'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { AUTH, createTopics, post, SECRET, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'
import { renderLook } from './support/looks.ts'

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
    lookerHosts: stub.origin,
    env: {
      PUBLIC_URL: 'https://hub.example.com/',
      ACTION_HUB_LABEL: 'lookstream test hub',
      MAX_CONCURRENT_SENDS: '1',
      MAX_BODY_BYTES: '8192',
      MAX_ROW_BYTES: '400',
      MAX_FIELD_BYTES: '100',
      KEEPALIVE_MS: '50',
    },
  })
}, 120_000)

afterAll(async () => {
  await ingress?.close()
  await stub?.close()
})

const referenceToken = (nonce: string) => `${nonce}/${createHmac('sha512', SECRET).update(nonce).digest('hex')}`

describe('authentication', () => {
  it('accepts a token made with the reference algorithm', async () => {
    const answer = await post(
      `${ingress.url}/`,
      {},
      { authorization: `Token token="${referenceToken('looker-admin-nonce')}"` },
    )
    expect(answer.status).toBe(200)
  })

  it('answers 403 with a JSON error for a missing, wrong, truncated or over-long token', async () => {
    const good = referenceToken('n')
    const headers = [
      undefined,
      '',
      'Bearer abc',
      `Token token="${good.slice(0, -2)}"`,
      `Token token="${good}00"`,
      `Token token="${good}${'a'.repeat(5_000)}"`,
      `Token token="n/${createHmac('sha512', 'other').update('n').digest('hex')}"`,
    ]
    for (const authorization of headers) {
      for (const path of ['/', '/actions/braze', '/actions/braze/form', '/actions/braze/execute', '/sends']) {
        const response = await request(`${ingress.url}${path}`, {
          method: path === '/sends' ? 'GET' : 'POST',
          headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
          ...(path === '/sends' ? {} : { body: '{}' }),
        })
        expect(response.statusCode, `${path} with ${authorization?.slice(0, 30)}`).toBe(403)
        expect(await response.body.json()).toEqual({ success: false, error: "Invalid 'Authorization' header." })
      }
    }
  })

  it('serves GET /status without a token', async () => {
    const response = await request(`${ingress.url}/status`)
    expect(response.statusCode).toBe(200)
    expect(await response.body.json()).toMatchObject({ status: 'ok' })
  })
})

describe('action list, definitions and forms', () => {
  it('lists the seven actions with the Looker ActionDefinition shape', async () => {
    const answer = await post(`${ingress.url}/`, {}, { 'user-agent': 'LookerOutgoingWebhook/7.3.00004561' })
    const list = answer.json as { label: string; integrations: Record<string, unknown>[] }
    expect(list.label).toBe('lookstream test hub')
    expect(list.integrations.map((a) => a.name)).toEqual([
      'segment_identify',
      'segment_track',
      'segment_group',
      'braze',
      'heap',
      'mparticle',
      'recurly_engage',
    ])
    for (const action of list.integrations) {
      expect(action).toEqual({
        name: action.name,
        label: expect.any(String) as unknown,
        description: expect.any(String) as unknown,
        url: `https://hub.example.com/actions/${action.name as string}/execute`,
        form_url: `https://hub.example.com/actions/${action.name as string}/form`,
        icon_data_uri: null,
        params: [],
        required_fields: expect.any(Array) as unknown,
        supported_action_types: ['query'],
        supported_formats: ['json_detail_lite_stream'],
        supported_formattings: ['unformatted'],
        supported_visualization_formattings: ['noapply'],
        supported_download_settings: ['url'],
        uses_oauth: false,
        delegate_oauth: false,
      })
    }
    const byName: Record<string, unknown> = Object.fromEntries(
      list.integrations.map((a): [string, unknown] => [String(a.name), a.required_fields]),
    )
    expect(byName).toEqual({
      segment_identify: [{ any_tag: ['email', 'user_id', 'segment_anonymous_id'] }],
      segment_track: [{ any_tag: ['email', 'user_id', 'segment_anonymous_id'] }],
      segment_group: [{ tag: 'segment_group_id' }, { any_tag: ['email', 'user_id', 'segment_anonymous_id'] }],
      braze: [{ tag: 'braze_id' }],
      heap: [],
      mparticle: [],
      recurly_engage: [],
    })
  })

  it('answers the listing, an action and a form whatever their body: empty, JSON or not JSON', async () => {
    for (const path of ['/', '/actions/braze', '/actions/segment_identify/form']) {
      for (const [contentType, body] of [
        ['application/json', ''],
        ['application/json', '{}'],
        ['application/json', '{"form_params":{"connection":"default"}}'],
        ['text/plain', 'not json'],
      ] as const) {
        const response = await request(`${ingress.url}${path}`, {
          method: 'POST',
          headers: { authorization: AUTH, 'content-type': contentType },
          body,
        })
        expect(response.statusCode, `${path} with ${contentType} ${JSON.stringify(body)}`).toBe(200)
        const json = (await response.body.json()) as Record<string, unknown>
        expect(path === '/' ? json.integrations : path.endsWith('/form') ? json.fields : json.name).toBeDefined()
      }
    }
  })

  it('offers json_detail to Looker before 6.2', async () => {
    const answer = await post(`${ingress.url}/actions/braze`, {}, { 'user-agent': 'LookerOutgoingWebhook/6.0.4' })
    expect(answer.json.supported_formats).toEqual(['json_detail'])
    expect(answer.json.name).toBe('braze')
  })

  it('serves each form with defaults, and 404 for an unknown action', async () => {
    const braze = await post(`${ingress.url}/actions/braze/form`, {})
    expect(braze.json).toEqual({
      fields: [
        expect.objectContaining({
          name: 'connection',
          type: 'select',
          default: 'default',
          required: false,
          options: [
            { name: 'default', label: 'default' },
            { name: 'eu', label: 'eu' },
          ],
        }),
        expect.objectContaining({
          name: 'braze_key',
          type: 'select',
          default: 'external_id',
          options: [
            { name: 'external_id', label: 'external_id' },
            { name: 'braze_id', label: 'braze_id' },
          ],
        }),
        expect.objectContaining({ name: 'braze_segment', default: 'LOOKER_EXPORT' }),
        expect.objectContaining({ name: 'braze_update_existing_only', type: 'select', default: 'yes' }),
        expect.objectContaining({ name: 'braze_null_values', type: 'select', default: 'skip' }),
        expect.objectContaining({ name: 'lookstream_run', type: 'select', default: 'send', required: false }),
        expect.objectContaining({ name: 'lookstream_rows', type: 'select', default: 'all', required: false }),
      ],
    })
    const track = await post(`${ingress.url}/actions/segment_track/form`, {})
    expect((track.json.fields as { name: string; required: boolean }[]).map((f) => [f.name, f.required])).toEqual([
      ['connection', false],
      ['event', true],
      ['lookstream_run', false],
      ['lookstream_rows', false],
    ])
    const missing = await post(`${ingress.url}/actions/nope/form`, {})
    expect(missing.status).toBe(404)
    expect(missing.json).toEqual({ success: false, error: 'No action found with name nope.' })
  })
})

describe('execute validation and limits', () => {
  const look = {
    fields: { dimensions: [{ name: 'u.id', tags: ['user_id'] }, { name: 'u.note' }] },
    rows: [{ 'u.id': { value: 'a' }, 'u.note': { value: 'ok' } }],
  }
  const pushed = (data: string, form: Record<string, string> = {}) => ({
    type: 'query',
    scheduled_plan: { scheduled_plan_id: 9 },
    attachment: { mimetype: 'application/json', extension: 'json', data },
    form_params: form,
  })

  it('rejects a non-query type and a missing source with a looker body', async () => {
    const wrongType = await post(`${ingress.url}/actions/segment_identify/execute`, { ...pushed('{}'), type: 'cell' })
    expect(wrongType.status).toBe(400)
    expect(wrongType.json.looker).toMatchObject({
      success: false,
      message: expect.stringContaining('query type only') as unknown,
    })
    const noSource = await post(`${ingress.url}/actions/segment_identify/execute`, {
      type: 'query',
      scheduled_plan: {},
    })
    expect(noSource.json.looker).toMatchObject({
      success: false,
      message: expect.stringContaining('neither scheduled_plan.download_url nor an attachment') as unknown,
    })
  })

  it('returns validation errors for a missing required form value', async () => {
    const answer = await post(`${ingress.url}/actions/segment_track/execute`, pushed(renderLook(look, 'json_detail')))
    expect(answer.json.looker).toEqual({
      success: false,
      message: 'Event name is required.',
      validation_errors: { event: 'Event name is required.' },
    })
  })

  it('refuses unknown per-send option values by field', async () => {
    const answer = await post(
      `${ingress.url}/actions/segment_identify/execute`,
      pushed(renderLook(look, 'json_detail'), { lookstream_run: 'maybe', lookstream_rows: 'some' }),
    )
    expect(answer.json.looker).toEqual({
      success: false,
      message:
        'Run must be one of send, dry_run; got "maybe". Rows to send must be one of all, changed, all_remember; got "some".',
      validation_errors: {
        lookstream_run: 'Run must be one of send, dry_run; got "maybe".',
        lookstream_rows: 'Rows to send must be one of all, changed, all_remember; got "some".',
      },
    })
  })

  it('answers 413 with a looker body when pushed data is over MAX_BODY_BYTES', async () => {
    const answer = await post(`${ingress.url}/actions/segment_identify/execute`, pushed('x'.repeat(10_000)))
    expect(answer.status).toBe(413)
    expect(answer.json.looker).toEqual({
      success: false,
      message: 'The request body is over the 8192-byte limit (MAX_BODY_BYTES).',
    })
  })

  it('rejects rows over the row and field limits with their row numbers', async () => {
    const rows = [
      { 'u.id': { value: 'a' }, 'u.note': { value: 'fine' } },
      { 'u.id': { value: 'b' }, 'u.note': { value: 'x'.repeat(600) } },
      { 'u.id': { value: 'c' }, 'u.note': { value: 'y'.repeat(150) } },
    ]
    const text = renderLook({ ...look, rows }, 'json_detail_lite_stream')
    const answer = await post(`${ingress.url}/actions/segment_identify/execute`, pushed(text))
    const row2At = Buffer.byteLength(text.slice(0, text.indexOf('{"u.id":{"value":"b"}')))
    expect(row2At).toBeGreaterThan(0)
    expect(answer.json.looker).toMatchObject({
      success: false,
      rows: { received: 3, accepted: 1, rejected: 2 },
      rejected_rows: [
        { row: 2, reason: `row is over the 400-byte row limit (the row starts at byte ${row2At})` },
        { row: 3, reason: 'field u.note is 150 bytes, over the 100-byte field limit' },
      ],
    })
  })

  it('holds the connection with newlines, answers 503 with Retry-After when sends are saturated, and ends with a looker body', async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let started!: () => void
    const streaming = new Promise<void>((resolve) => (started = resolve))
    const text = renderLook(look, 'json_detail_lite_stream')
    const url = stub.route('/download/slow', {
      kind: 'custom',
      handle: async (response: ServerResponse) => {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.write(text.slice(0, 20))
        started()
        await released
        response.end(text.slice(20))
      },
    })
    try {
      const first = await request(`${ingress.url}/actions/segment_identify/execute`, {
        method: 'POST',
        headers: { authorization: AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'query', scheduled_plan: { scheduled_plan_id: 10, download_url: url } }),
      })
      // Status 200 comes up front, before the result is read.
      expect(first.statusCode).toBe(200)
      await streaming
      const second = await post(`${ingress.url}/actions/segment_identify/execute`, pushed(text))
      expect(second.status).toBe(503)
      expect(second.json.looker).toMatchObject({
        success: false,
        message: expect.stringContaining('MAX_CONCURRENT_SENDS') as unknown,
      })
      const sends = (await (
        await request(`${ingress.url}/sends?limit=10`, { headers: { authorization: AUTH } })
      ).body.json()) as {
        sends: { status: string; action: string; scheduledPlanId?: string }[]
      }
      expect(sends.sends.find((send) => send.scheduledPlanId === '10')).toMatchObject({
        status: 'running',
        action: 'segment_identify',
      })
      const metrics = await (await request(`${ingress.url}/metrics`)).body.text()
      expect(metrics).toMatch(/lookstream_ingress_sends_in_progress(\{[^}]*\})? 1/)
      // Keep-alive newlines arrive while Looker's result is stalled; then let it finish.
      const chunks = first.body[Symbol.asyncIterator]()
      let received = ''
      while (!received.includes('\n\n')) {
        const next = await chunks.next()
        if (next.done) break
        received += Buffer.from(next.value as Uint8Array).toString('utf8')
      }
      expect(received).toMatch(/^\n\n/)
      release()
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
        received += Buffer.from(next.value as Uint8Array).toString('utf8')
      }
      expect(received).toMatch(/^\n+\{"looker":/)
      const answer = JSON.parse(received) as { looker: unknown }
      expect(answer.looker).toMatchObject({ success: true, rows: { received: 1, accepted: 1, rejected: 0 } })
    } finally {
      release()
    }
  })

  it('finishes and records a send when Looker hangs up mid-send', async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let started!: () => void
    const streaming = new Promise<void>((resolve) => (started = resolve))
    const text = renderLook(look, 'json_detail_lite_stream')
    const url = stub.route('/download/hangup', {
      kind: 'custom',
      handle: async (response: ServerResponse) => {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.write(text.slice(0, 20))
        started()
        await released
        response.end(text.slice(20))
      },
    })
    const abort = new AbortController()
    const pending = request(`${ingress.url}/actions/segment_identify/execute`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'query', scheduled_plan: { scheduled_plan_id: 11, download_url: url } }),
      signal: abort.signal,
    }).then((response) => response.body.text())
    try {
      await streaming
      abort.abort()
      await expect(pending).rejects.toThrow()
    } finally {
      release()
    }
    const deadline = Date.now() + 20_000
    let record: { status: string; accepted: number } | undefined
    while (Date.now() < deadline) {
      const list = (await (
        await request(`${ingress.url}/sends?limit=20`, { headers: { authorization: AUTH } })
      ).body.json()) as {
        sends: { status: string; accepted: number; scheduledPlanId?: string }[]
      }
      record = list.sends.find((send) => send.scheduledPlanId === '11')
      if (record?.status === 'succeeded') break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(record).toMatchObject({ status: 'succeeded', accepted: 1 })
    expect((await request(`${ingress.url}/status`)).statusCode).toBe(200)
  })

  it('exposes the ingress metrics', async () => {
    const text = await (await request(`${ingress.url}/metrics`)).body.text()
    for (const name of [
      'lookstream_ingress_sends_total',
      'lookstream_ingress_rows_total',
      'lookstream_ingress_produce_latency_seconds',
      'lookstream_ingress_bytes_streamed_total',
      'lookstream_ingress_sends_in_progress',
    ]) {
      expect(text).toContain(name)
    }
    expect(text).toMatch(/lookstream_ingress_rows_total\{[^}]*outcome="rejected"[^}]*reason="row_too_large"[^}]*\} 1/)
  })
})
