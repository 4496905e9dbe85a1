import { readTopic } from '@lookstream/delivery-testing'
import { runFileDestination, type RunningDestination } from '@lookstream/destination'
import { HEADERS, TOPICS, dlqTopic, headersFor } from '@lookstream/events'
import { randomUUID } from 'node:crypto'
import { waitFor } from '@lookstream/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { recurlyEngage } from '../src/recurly-engage.ts'
import {
  bucketState,
  engageEnv,
  expectedName,
  finishSend,
  makeSend,
  produceRows,
  readCsv,
  sendRecord,
  startEngageStack,
  waitForFile,
  type EngageStack,
} from './engage-stack.ts'
import { readObject } from './s3-helpers.ts'

const TRICKY = [
  'plain',
  'comma, inside',
  'quote " inside',
  '"quoted"',
  'line\nbreak',
  'crlf\r\nbreak',
  'Zoë Ünal 中文 😀',
  ' padded ',
  '',
  '=SUM(A1)',
]

function traits(i: number): Record<string, unknown> {
  return {
    'Users Name': TRICKY[i % TRICKY.length],
    'Users Plan': i % 3 === 0 ? null : i % 3 === 1 ? 'monthly' : 'annual',
    'Users LTV': i % 5 === 0 ? -1.25 : i * 10,
    'Users Active': i % 2 === 0,
  }
}

function expectedRecord(i: number): string[] {
  const t = traits(i)
  const cell = (v: unknown) => (v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v))
  return [`user-${i}`, cell(t['Users Name']), cell(t['Users Plan']), cell(t['Users LTV']), cell(t['Users Active'])]
}

const HEADER = ['user_id', 'Users Name', 'Users Plan', 'Users LTV', 'Users Active']

describe('recurly-engage: one complete CSV per send', () => {
  let stack: EngageStack
  let service: RunningDestination

  beforeAll(async () => {
    stack = await startEngageStack(inject('s3Endpoint'))
    service = await runFileDestination(recurlyEngage, { env: engageEnv(stack) })
  })
  afterAll(async () => {
    await service?.close()
    await stack?.stop()
  })

  it('writes rows spread over every partition into one file: header first, every accepted row once, values exact', async () => {
    const rows = 3000
    const send = makeSend(rows, traits)
    await produceRows(stack, send)
    const key = expectedName(send)
    // Every row is staged long before the ingress says the send is over: no file until then.
    await waitFor(async () => (await bucketState(stack)).staged.length > 0, { timeoutMs: 20_000 })
    expect(await readObject(stack.s3, stack.bucket, key)).toBeUndefined()
    await finishSend(stack, send, rows)
    expect(await waitForFile(stack, send)).toBe(key)
    const { records } = await readCsv(stack, key)
    expect(records[0]).toEqual(HEADER)
    expect(records.length - 1).toBe(rows)
    const byUser = new Map(records.slice(1).map((record) => [record[0], record]))
    expect(byUser.size).toBe(rows)
    for (let i = 0; i < rows; i++) expect(byUser.get(`user-${i}`)).toEqual(expectedRecord(i))
    await waitFor(async () => (await bucketState(stack)).staged.length === 0, { message: 'staging cleaned up' })
    const state = await bucketState(stack)
    expect(state.files.filter((file) => file.includes(send.startedAt.slice(0, 4)))).toContain(key)
    expect(state.unfinished).toBe(0)
    const record = await sendRecord(stack, send.sendId)
    expect(record.file).toBe(`s3://${stack.bucket}/${key}`)
    expect(record.delivered).toBe(String(rows))
  })

  it('writes the bytes exactly: CRLF records, RFC 4180 quoting, UTF-8, null as an empty cell', async () => {
    const send = makeSend(
      4,
      (i) =>
        [
          { 'Users Name': 'a, "b"', 'Users Note': 'x\ny' },
          { 'Users Name': null, 'Users Note': '中文 😀' },
          { 'Users Name': '', 'Users Note': false },
          { 'Users Name': 12.5, 'Users Note': 'crlf\r\n' },
        ][i]!,
    )
    // One partition, in order: the file's row order is the partition's.
    await produceRows(stack, send, 0, 4, 2)
    await finishSend(stack, send, 4)
    const key = expectedName(send)
    expect(await waitForFile(stack, send)).toBe(key)
    const bytes = (await readObject(stack.s3, stack.bucket, key))!
    expect(bytes.toString('utf8')).toBe(
      'user_id,Users Name,Users Note\r\n' +
        'user-0,"a, ""b""","x\ny"\r\n' +
        'user-1,,中文 😀\r\n' +
        'user-2,,false\r\n' +
        'user-3,12.5,"crlf\r\n"\r\n',
    )
  })

  it('writes no file for a send that failed at the ingress, and the send record says why', async () => {
    const send = makeSend(50, traits)
    await produceRows(stack, send)
    await finishSend(stack, send, 50, 'failed', 'the Looker stream broke after 50 rows')
    const record = await waitFor(
      async () => {
        const r = await sendRecord(stack, send.sendId)
        return r.file_error === undefined ? undefined : r
      },
      { timeoutMs: 20_000 },
    )
    expect(record.file_error).toBe(
      'the send failed at the ingress (the Looker stream broke after 50 rows); no file is written',
    )
    await waitFor(async () => (await bucketState(stack)).staged.length === 0, { message: 'staging cleaned up' })
    expect(await readObject(stack.s3, stack.bucket, expectedName(send))).toBeUndefined()
  })

  it('writes no file when a row cannot be written, and names the column, not the value', async () => {
    const send = makeSend(20, (i) =>
      i === 7 ? { 'Users Address': { city: 'secret-city' } } : { 'Users Address': 'x' },
    )
    await produceRows(stack, send)
    await finishSend(stack, send, 20)
    const record = await waitFor(
      async () => {
        const r = await sendRecord(stack, send.sendId)
        return r.file_error === undefined ? undefined : r
      },
      { timeoutMs: 20_000 },
    )
    expect(record.file_error).toContain('1 of 20 rows could not be written')
    expect(record.file_error).toContain('trait "Users Address" holds a object')
    expect(record.file_error).not.toContain('secret-city')
    expect(record.dead_lettered).toBe('1')
    expect(await readObject(stack.s3, stack.bucket, expectedName(send))).toBeUndefined()
    await waitFor(async () => (await bucketState(stack)).staged.length === 0, { message: 'staging cleaned up' })
    expect((await bucketState(stack)).unfinished).toBe(0)
  })

  it("dead-letters another producer's message routed here (no send id) as one it does not take", async () => {
    const message = {
      type: 'identify' as const,
      messageId: randomUUID(),
      userId: 'other-producer-user',
      traits: { plan: 'annual' },
      timestamp: new Date().toISOString(),
      integrations: { All: true },
    }
    await stack.producer.send({
      topic: TOPICS.identify,
      key: message.userId,
      value: JSON.stringify(message),
      headers: headersFor(message, { producer: 'billing' }),
    })
    const [dead] = await readTopic(
      stack,
      dlqTopic('recurly-engage'),
      1,
      (record) => record.value?.toString().includes(message.messageId) ?? false,
    )
    expect(dead!.headers['lookstream-error-code']).toBe('LS_DEST_UNSUPPORTED_MESSAGE')
    expect(dead!.headers[HEADERS.error]).toBe(
      "message has no send id: a file destination writes one file per Looker send and takes only the ingress's sends",
    )
  })

  it('gives a second send started in the same second its own file', async () => {
    const first = makeSend(3, traits)
    const second = { ...makeSend(2, traits), startedAt: first.startedAt }
    second.messages.forEach((m) => (m.timestamp = first.startedAt))
    await produceRows(stack, first)
    await finishSend(stack, first, 3)
    const key = expectedName(first)
    expect(await waitForFile(stack, first)).toBe(key)
    await produceRows(stack, second)
    await finishSend(stack, second, 2)
    const secondKey = key.replace(/\.csv$/, `_${second.sendId.slice(0, 8)}.csv`)
    expect(await waitForFile(stack, second)).toBe(secondKey)
    expect((await readCsv(stack, key)).records.length).toBe(4)
    expect((await readCsv(stack, secondKey)).records.length).toBe(3)
  })
})
