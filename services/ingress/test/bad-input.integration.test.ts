import { HEADERS, TOPICS, sendRecordKey } from '@lookstream/events'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { AUTH, createTopics, post, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'
import { readTopic, type TopicRecord } from './support/read-topic.ts'
import { request } from 'undici'
import { withoutSendPointer } from './support/verdict.ts'

// The bad-input corpus: every hostile or merely unusual Looker result, each answered with an exact result or an
// exact error. Row values carry CANARY; it may appear in the canonical messages of accepted rows, and nowhere
// else: not in the Looker answer, the log, the Redis send record or the lookstream.sends.v1 events.

const CANARY = 'S3CRET'
const kafka = { brokers: inject('kafkaBrokers') }
const redisUrl = inject('redisUrl')
let stub: LookerStub
let ingress: Ingress
const sendIds: string[] = []

beforeAll(async () => {
  stub = await startLookerStub()
  await createTopics(kafka.brokers)
  ingress = await startIngress({ brokers: kafka.brokers, redisUrl, lookerHosts: stub.origin })
}, 120_000)

afterAll(async () => {
  await ingress?.close()
  await stub?.close()
})

interface Looker {
  success: boolean
  message: string
  send_id: string
  rows: { received: number; accepted: number; rejected: number }
  rejected_rows: { row: number; reason: string }[]
}

const F = { dimensions: [{ name: 'u.id', tags: ['user_id'] }, { name: 'u.n' }] }

function look(fields: unknown, rows: string[], head = '"ran_at":"2026-11-22T00:00:00Z",'): string {
  return `{${head}"fields":${JSON.stringify(fields)},"data":[${rows.join(',')}]}`
}

/** Byte offset of `part` in `text` (UTF-8). */
function at(text: string | Buffer, part: string): number {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text)
  const index = bytes.indexOf(part)
  expect(index, `${part} in the document`).toBeGreaterThanOrEqual(0)
  return index
}

async function execute(
  action: string,
  result: string | Buffer,
  form: Record<string, string> = {},
): Promise<{ looker: Looker; text: string }> {
  const answer = await post(`${ingress.url}/actions/${action}/execute`, {
    type: 'query',
    scheduled_plan: { scheduled_plan_id: 7 },
    attachment: Buffer.isBuffer(result)
      ? { mimetype: 'application/json;base64', data: result.toString('base64') }
      : { mimetype: 'application/json', data: result },
    form_params: form,
  })
  expect(answer.status).toBe(200)
  const looker = withoutSendPointer(answer.json.looker as unknown as Looker)
  sendIds.push(looker.send_id)
  expect(answer.text).not.toContain(CANARY)
  const record = await ingress.redis.hgetall(sendRecordKey(String(looker.send_id)))
  expect(record.send_id).toBe(looker.send_id)
  expect(JSON.stringify(record)).not.toContain(CANARY)
  expect(ingress.logs.join('')).not.toContain(CANARY)
  return { looker, text: answer.text }
}

async function messagesOf(sendId: string): Promise<Record<string, unknown>[]> {
  const topics = [TOPICS.identify, TOPICS.track, TOPICS.group]
  const records: TopicRecord[] = (await Promise.all(topics.map((topic) => readTopic(kafka.brokers, topic)))).flat()
  return records
    .filter((record) => record.headers[HEADERS.sendId] === sendId)
    .map((record) => JSON.parse(record.value) as Record<string, unknown> & { context: { lookstream: { row: number } } })
    .sort((a, b) => a.context.lookstream.row - b.context.lookstream.row)
}

const sent = (label: string, accepted: number, received: number, rejected: number) =>
  `Sent to ${label} (connection default): ${accepted} of ${received} rows accepted (acknowledged by Kafka), ${rejected} rejected.`
const failed = (label: string, failure: string, accepted: number, received: number, rejected: number) =>
  `Send to ${label} (connection default) failed: ${failure}. ${accepted} of ${received} rows accepted (acknowledged by Kafka), ${rejected} rejected.`

describe('exact values', () => {
  it('keeps every digit of big ids and numbers a double cannot hold', async () => {
    const result = look(F, [
      '{"u.id":{"value":9007199254740993},"u.n":{"value":9007199254740993}}',
      '{"u.id":{"value":123456789012345678901234567890},"u.n":{"value":1e400}}',
      '{"u.id":{"value":1e21},"u.n":{"value":0.1}}',
      '{"u.id":{"value":"S3CRET-4"},"u.n":{"value":[1.50,-2.5e-7,12345678901234567890]}}',
    ])
    const { looker } = await execute('segment_identify', result)
    expect(looker).toMatchObject({ success: true, message: sent('Segment Identify', 4, 4, 0), rejected_rows: [] })
    const messages = await messagesOf(looker.send_id)
    expect(messages.map((m) => [m.userId, m.traits])).toEqual([
      ['9007199254740993', { 'u.n': '9007199254740993' }],
      ['123456789012345678901234567890', { 'u.n': '1e400' }],
      ['1000000000000000000000', { 'u.n': 0.1 }],
      ['S3CRET-4', { 'u.n': [1.5, -2.5e-7, '12345678901234567890'] }],
    ])
  })

  it('keeps an mParticle customer_id exact', async () => {
    const fields = { dimensions: [{ name: 'c.id', tags: ['mp_customer_id'] }, { name: 'c.ltv' }] }
    const result = look(fields, ['{"c.id":{"value":12345678901234567890},"c.ltv":{"value":99999999999999999}}'])
    const { looker } = await execute('mparticle', result)
    expect(looker).toMatchObject({ success: true, message: sent('mParticle', 1, 1, 0) })
    const [message] = await messagesOf(looker.send_id)
    expect(message).toMatchObject({
      userId: '12345678901234567890',
      traits: { 'looker_c.ltv': '99999999999999999' },
      context: { identities: { customer_id: '12345678901234567890' } },
    })
  })
})

describe('no silent change', () => {
  it('rejects a row that is not valid UTF-8 and sends the others', async () => {
    const bad = Buffer.concat([Buffer.from('{"u.id":{"value":"S3CRET'), Buffer.of(0xff), Buffer.from('"}}')])
    const good = '{"u.id":{"value":"utf8-ok"}}'
    const result = Buffer.concat([
      Buffer.from(`{"fields":${JSON.stringify(F)},"data":[`),
      bad,
      Buffer.from(`,${good}]}`),
    ])
    const { looker } = await execute('segment_identify', result)
    const reason = `row is not valid UTF-8 (the row starts at byte ${at(result, '{"u.id":{"value":"S3CRET')})`
    expect(looker).toMatchObject({
      success: false,
      message: `${sent('Segment Identify', 1, 2, 1)} First rejected rows: row 1: ${reason}.`,
      rejected_rows: [{ row: 1, reason }],
    })
    expect((await messagesOf(looker.send_id)).map((m) => m.userId)).toEqual(['utf8-ok'])
  })

  it('keeps fields, pivot keys and Braze attributes named __proto__', async () => {
    const fields = { dimensions: [{ name: 'u.id', tags: ['user_id'] }, { name: '__proto__' }, { name: 'u.p' }] }
    const result = look(fields, [
      '{"u.id":{"value":"p1"},"__proto__":{"value":"S3CRET-a"},"u.p":{"__proto__":{"value":1},"2024":{"value":2}}}',
    ])
    const { looker } = await execute('segment_identify', result)
    expect(looker).toMatchObject({ success: true, message: sent('Segment Identify', 1, 1, 0) })
    const [message] = await messagesOf(looker.send_id)
    const traits = message!.traits as Record<string, unknown>
    expect(Object.hasOwn(traits, '__proto__')).toBe(true)
    expect(Object.getOwnPropertyDescriptor(traits, '__proto__')?.value).toBe('S3CRET-a')
    const pivoted = traits['u.p'] as Record<string, unknown>
    expect(Object.getOwnPropertyDescriptor(pivoted, '__proto__')?.value).toBe(1)
    expect(pivoted['2024']).toBe(2)

    const braze = {
      dimensions: [
        { name: 'b.id', tags: ['braze_id'] },
        { name: 'b.x', tags: ['braze[__proto__]'] },
      ],
    }
    const sentBraze = await execute('braze', look(braze, ['{"b.id":{"value":"b1"},"b.x":{"value":"S3CRET-b"}}']))
    expect(sentBraze.looker).toMatchObject({ success: true, message: sent('Braze', 1, 1, 0) })
    const [brazeMessage] = await messagesOf(sentBraze.looker.send_id)
    expect(Object.getOwnPropertyDescriptor(brazeMessage!.traits, '__proto__')?.value).toBe('S3CRET-b')
  })

  it.each([
    ['fields', `{"fields":${JSON.stringify(F)},"fields":${JSON.stringify(F)},"data":[]}`],
    ['ran_at', `{"ran_at":"2026-01-01T00:00:00Z","ran_at":"2026-01-02T00:00:00Z","fields":{},"data":[]}`],
  ])('fails on a duplicate root %s key', async (key, result) => {
    const { looker } = await execute('segment_identify', result)
    expect(looker).toMatchObject({
      success: false,
      message: failed('Segment Identify', `Looker result has more than one root "${key}" key`, 0, 0, 0),
    })
  })
})

describe('bounded work', () => {
  it('rejects only the row nested 10,000 levels deep', async () => {
    const deep = `{"u.id":{"value":"S3CRET-deep"},"u.n":{"value":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`
    const result = look(F, ['{"u.id":{"value":"d1"}}', deep, '{"u.id":{"value":"d3"}}'])
    const { looker } = await execute('segment_identify', result)
    const reason = `row is nested deeper than 64 levels (the row starts at byte ${at(result, '{"u.id":{"value":"S3CRET-deep"}')})`
    expect(looker).toMatchObject({
      success: false,
      message: `${sent('Segment Identify', 2, 3, 1)} First rejected rows: row 2: ${reason}.`,
      rejected_rows: [{ row: 2, reason }],
    })
    expect((await messagesOf(looker.send_id)).map((m) => m.userId)).toEqual(['d1', 'd3'])
  })

  it('fails a Look with more fields than MAX_FIELDS', async () => {
    const dimensions = Array.from({ length: 10_001 }, (_, i) => ({ name: `f.${i}`, tags: i === 0 ? ['user_id'] : [] }))
    const { looker } = await execute('segment_identify', look({ dimensions }, ['{"f.0":{"value":"w1"}}']))
    expect(looker).toMatchObject({
      success: false,
      message: failed(
        'Segment Identify',
        "Looker result's fields lists more than 10000 fields, over the 10000-field limit (MAX_FIELDS)",
        0,
        0,
        0,
      ),
    })
  })
})

describe('no row bytes in any message', () => {
  it('rejects a row with an unquoted value by its number and offset', async () => {
    const result = look(F, ['{"u.id":{"value":"j1"}}', '{"u.id":{"value":carol.S3CRET}}'])
    const { looker } = await execute('segment_identify', result)
    const reason = `row is not valid JSON (the row starts at byte ${at(result, '{"u.id":{"value":carol')})`
    expect(looker).toMatchObject({
      success: false,
      message: `${sent('Segment Identify', 1, 2, 1)} First rejected rows: row 2: ${reason}.`,
      rejected_rows: [{ row: 2, reason }],
    })
  })

  it('rejects a row whose JSON error has a position with that byte offset', async () => {
    const row = '{"u.id":{"value":"S3CRET-x"} "u.n":1}'
    const result = look(F, [row])
    const { looker } = await execute('segment_identify', result)
    const start = at(result, row)
    const reason = `row is not valid JSON (the row starts at byte ${start}, the error is at byte ${start + row.indexOf('"u.n"')})`
    expect(looker.rejected_rows).toEqual([{ row: 1, reason }])
  })

  it('fails a CSV download without quoting it', async () => {
    const url = stub.route('/download/csv', { kind: 'body', body: `id,email\n1,${CANARY}@example.com\n` })
    const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
      type: 'query',
      scheduled_plan: { scheduled_plan_id: 8, download_url: url },
    })
    const looker = withoutSendPointer(answer.json.looker as unknown as Looker)
    sendIds.push(looker.send_id)
    expect(answer.text).not.toContain(CANARY)
    expect(looker).toMatchObject({
      success: false,
      message: failed(
        'Segment Identify',
        "Looker result is not a JSON object: the document must start with '{' (byte 0 is not; a CSV, HTML or other body?)",
        0,
        0,
        0,
      ),
    })
  })
})

describe('precise messages', () => {
  it.each([
    [{ dimensions: [null] }, `fields.dimensions[0] is null; a field must be an object with a "name" string.`],
    [
      { dimensions: [{ name: 'u.id', tags: 5 }] },
      'fields.dimensions[0].tags (field u.id) is a number; it must be an array of strings.',
    ],
    [
      { dimensions: [{ name: 'u.id', tags: [5] }] },
      'fields.dimensions[0].tags[0] (field u.id) is a number; tags must be strings.',
    ],
    [{ measures: [{ name: 5 }] }, 'fields.measures[0].name is a number; it must be a string.'],
    [{ dimensions: {} }, 'fields.dimensions is an object; it must be an array of fields.'],
  ])('names the schema problem in fields %j', async (fields, problem) => {
    const { looker } = await execute('segment_identify', look(fields, ['{"u.id":{"value":"S3CRET"}}']))
    expect(looker).toMatchObject({
      success: false,
      message: failed('Segment Identify', `Looker result's ${problem.replace(/\.$/, '')}`, 0, 0, 0),
    })
  })

  it('names the type an identity holds', async () => {
    const { looker } = await execute('segment_identify', look(F, ['{"u.id":{"value":["S3CRET"]}}']))
    expect(looker.rejected_rows).toEqual([{ row: 1, reason: 'user_id field u.id holds an array' }])
  })

  it('sends the rows before a break in the document and says where it broke', async () => {
    const result = look(F, ['{"u.id":{"value":"b1"}} {"u.id":{"value":"S3CRET-b2"}}'])
    const { looker } = await execute('segment_identify', result)
    const failure = `Looker result is not valid JSON: expected ',' or ']' after row 1 at byte ${at(result, ' {"u.id":{"value":"S3CRET') + 1}`
    expect(looker).toMatchObject({ success: false, message: failed('Segment Identify', failure, 1, 1, 0) })
    expect((await messagesOf(looker.send_id)).map((m) => m.userId)).toEqual(['b1'])
  })

  it('takes form_params with a __proto__ key (valid JSON) like any other', async () => {
    const body = `{"type":"query","scheduled_plan":{"scheduled_plan_id":9},"attachment":{"mimetype":"application/json","data":${JSON.stringify(look(F, ['{"u.id":{"value":"f1"}}']))}},"form_params":{"__proto__":{"connection":"x"},"connection":"default"}}`
    const response = await request(`${ingress.url}/actions/segment_identify/execute`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body,
    })
    const looker = withoutSendPointer(((await response.body.json()) as { looker: Looker }).looker)
    sendIds.push(looker.send_id)
    expect(response.statusCode).toBe(200)
    expect(looker).toMatchObject({ success: true, message: sent('Segment Identify', 1, 1, 0) })
  })

  it.each([
    ['connection', ['other'], 'Connection must be text; form_params.connection is an array.'],
    ['lookstream_run', ['dry_run'], 'Run must be text; form_params.lookstream_run is an array.'],
    ['event', { name: 'Signed Up' }, 'Event must be text; form_params.event is an object.'],
  ])(
    'refuses form_params.%s of another type than text instead of defaulting or rounding it',
    async (name, value, message) => {
      const answer = await post(`${ingress.url}/actions/segment_track/execute`, {
        type: 'query',
        scheduled_plan: { scheduled_plan_id: 10 },
        attachment: { mimetype: 'application/json', data: look(F, ['{"u.id":{"value":"f1"}}']) },
        form_params: { event: 'Signed Up', [name]: value },
      })
      expect(answer.status).toBe(200)
      expect(answer.json).toEqual({ looker: { success: false, message, validation_errors: { [name]: message } } })
    },
  )

  it('keeps every digit of a numeric scheduled_plan_id and form value beyond 2^53', async () => {
    const result = look(F, ['{"u.id":{"value":"f2"}}'])
    const response = await request(`${ingress.url}/actions/segment_track/execute`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body:
        `{"type":"query","scheduled_plan":{"scheduled_plan_id":12345678901234567890},` +
        `"attachment":{"mimetype":"application/json","data":${JSON.stringify(result)}},` +
        `"form_params":{"event":98765432109876543210}}`,
    })
    const looker = withoutSendPointer(((await response.body.json()) as { looker: Looker }).looker)
    expect(looker).toMatchObject({ success: true, message: sent('Segment Track', 1, 1, 0) })
    const record = await ingress.redis.hgetall(sendRecordKey(looker.send_id))
    expect(record.scheduled_plan_id).toBe('12345678901234567890')
    const [message] = await messagesOf(looker.send_id)
    expect(message).toMatchObject({ type: 'track', event: '98765432109876543210' })
  })

  it('refuses a scheduled_plan_id longer than 128 characters (cut, two plans would share one send key)', async () => {
    const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
      type: 'query',
      scheduled_plan: { scheduled_plan_id: 'p'.repeat(129) },
      attachment: { mimetype: 'application/json', data: look(F, ['{"u.id":{"value":"f3"}}']) },
    })
    expect(answer.status).toBe(400)
    expect(answer.json).toEqual({
      looker: {
        success: false,
        message: "The execute body's scheduled_plan.scheduled_plan_id is longer than 128 characters.",
      },
    })
  })

  it('sends with the receive time, and says so, when ran_at is not an ISO 8601 date-time (never a guessed one)', async () => {
    const before = Date.now()
    const { looker } = await execute('segment_identify', look(F, ['{"u.id":{"value":"f4"}}'], '"ran_at":"garbage 12",'))
    expect(looker).toMatchObject({
      success: true,
      message: expect.stringContaining(
        "Note: the result's ran_at is not an ISO 8601 date-time (Looker writes 2017-07-28T02:25:19+00:00): every message carries the time lookstream received the send instead.",
      ) as unknown,
    })
    const [message] = await messagesOf(looker.send_id)
    // Date.parse would have read "garbage 12" as 2001-12-01.
    expect(Date.parse(message!.timestamp as string)).toBeGreaterThanOrEqual(before - 1000)
  })

  it('answers an execute body that is not JSON with a looker body', async () => {
    const response = await request(`${ingress.url}/actions/segment_identify/execute`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: `{"type":"query","form_params":{"connection":${CANARY}}}`,
    })
    const text = await response.body.text()
    expect(response.statusCode).toBe(400)
    expect(text).not.toContain(CANARY)
    expect(JSON.parse(text)).toEqual({
      looker: {
        success: false,
        message: 'The execute body is not valid JSON.',
      },
    })
  })

  it('fails a pushed attachment that is not valid base64, saying where', async () => {
    const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
      type: 'query',
      scheduled_plan: { scheduled_plan_id: 10 },
      attachment: { mimetype: 'application/json;base64', data: `eyJm*${CANARY}` },
    })
    const looker = withoutSendPointer(answer.json.looker as unknown as Looker)
    sendIds.push(looker.send_id)
    expect(answer.text).not.toContain(CANARY)
    expect(looker).toMatchObject({
      success: false,
      message: failed(
        'Segment Identify',
        'attachment.data is not valid base64 (at character 4 of its decoded string)',
        0,
        0,
        0,
      ),
    })
  })
})

describe('lookstream.sends.v1', () => {
  it('holds a started and a finished event for every send, without row values', async () => {
    expect(sendIds.length).toBeGreaterThan(10)
    const events = (await readTopic(kafka.brokers, TOPICS.sends)).filter((record) => sendIds.includes(record.key ?? ''))
    for (const sendId of sendIds) {
      const phases = events
        .filter((record) => record.key === sendId)
        .map((record) => (JSON.parse(record.value) as { phase: string }).phase)
      expect(phases, sendId).toEqual(['started', 'finished'])
    }
    for (const record of events) {
      expect(record.value).not.toContain(CANARY)
      expect(JSON.stringify(record.headers)).not.toContain(CANARY)
    }
  })
})
