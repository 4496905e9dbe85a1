import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import {
  ensureBucket,
  s3Client,
  spawnService,
  waitFor,
  HARNESS_S3_CREDENTIALS,
  type SpawnedService,
} from '@lookstream/testing'
import { parse } from 'csv-parse/sync'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { LOOK_TAIL, lookHead } from './support/looks.ts'
import { startPipeline, type Pipeline } from './support/pipeline.ts'

// Looker execute of recurly_engage → ingress (process) → local-kafka → recurly-engage service (process) → S3
// (the harness's, through the AWS SDK): one CSV per send under the upload location.

const ENGAGE_MAIN = fileURLToPath(new URL('../services/recurly-engage/src/main.ts', import.meta.url))

const FIELDS = {
  dimensions: [
    { name: 'users.email', label: 'Users Email', view: 'users', tags: ['email'], type: 'string' },
    { name: 'users.id', label: 'Users ID', view: 'users', tags: ['user_id'], type: 'string' },
    { name: 'users.note', label: 'Users Note', view: 'users', tags: [], type: 'string' },
    { name: 'users.vip', label: 'Users VIP', view: 'users', tags: [], type: 'yesno' },
  ],
  measures: [{ name: 'orders.ltv', label: 'Orders LTV', view: 'orders', tags: [], measure: true, type: 'sum' }],
}
// Each note and its RFC 4180 cell, written out by hand; a null note is an empty cell.
const NOTES: [note: string, cell: string][] = [
  ['a, "quoted" note', '"a, ""quoted"" note"'],
  ['two\nlines', '"two\nlines"'],
  ['Zoë 中文 😀', 'Zoë 中文 😀'],
  ['', ''],
  ['plain', 'plain'],
]
const noteCell = (i: number) => (i % 6 === 5 ? '' : NOTES[i % NOTES.length]![1])

function row(prefix: string, i: number): Record<string, unknown> {
  return {
    'users.email': { value: `${prefix}-${i}@example.com` },
    'users.id': { value: `${prefix}-${i}` },
    'users.note': { value: i % 6 === 5 ? null : NOTES[i % NOTES.length]![0] },
    'users.vip': { value: i % 2 === 0 },
    'orders.ltv': { value: i * 1.5 },
  }
}

function look(prefix: string, rows: number, fields: object, end = LOOK_TAIL): string {
  const data = Array.from({ length: rows }, (_, i) => JSON.stringify(row(prefix, i)))
  return lookHead('2026-12-06T06:00:00+00:00', fields) + data.join(',') + end
}

describe('recurly_engage through the pipeline: one CSV per send in S3', () => {
  let pipeline: Pipeline
  let engage: SpawnedService
  const endpoint = inject('s3Endpoint')
  const s3 = s3Client(endpoint)
  const bucket = `e2e-${randomUUID().slice(0, 8)}`

  beforeAll(async () => {
    await ensureBucket(endpoint, bucket)
    pipeline = await startPipeline()
    engage = await spawnService(
      ENGAGE_MAIN,
      {
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'info',
        KAFKA_BROKERS: pipeline.kafka.brokers,
        REDIS_URL: pipeline.redis.url,
        DELIVERY_FILE_LINGER_MS: '200',
        DELIVERY_FILE_SWEEP_MS: '500',
        DELIVERY_REGISTRY_HEARTBEAT_MS: '500',
        KAFKA_SESSION_TIMEOUT_MS: '6000',
        KAFKA_HEARTBEAT_INTERVAL_MS: '500',
        RECURLY_ENGAGE_S3_BUCKET: bucket,
        RECURLY_ENGAGE_S3_PREFIX: 'ingest/',
        RECURLY_ENGAGE_S3_ENDPOINT: endpoint,
        RECURLY_ENGAGE_S3_ACCESS_KEY_ID: HARNESS_S3_CREDENTIALS.accessKeyId,
        RECURLY_ENGAGE_S3_SECRET_ACCESS_KEY: HARNESS_S3_CREDENTIALS.secretAccessKey,
      },
      { readyTimeoutMs: 60_000 },
    )
  }, 120_000)

  afterAll(async () => {
    await engage?.stop('SIGTERM', 10_000)
    await pipeline?.stop()
    s3.destroy()
  }, 60_000)

  async function fileOf(
    sendId: string,
  ): Promise<{ key: string; records: string[][]; text: string; send: Record<string, unknown> }> {
    const send = await waitFor(
      async () => {
        const record = await pipeline.getSend(sendId)
        return typeof record.file === 'string' || typeof record.fileError === 'string' ? record : undefined
      },
      { timeoutMs: 60_000, message: 'the send record names its file' },
    )
    expect(send.fileError).toBeUndefined()
    const key = String(send.file).replace(`s3://${bucket}/`, '')
    const stamp = String(send.startedAt)
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}Z$/, 'Z')
    // A send started in the same second as an earlier one gets the name with its send id's first 8 characters.
    expect([`ingest/traits_${stamp}.csv`, `ingest/traits_${stamp}_${sendId.slice(0, 8)}.csv`]).toContain(key)
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    const text = await object.Body!.transformToString('utf8')
    return { key, text, records: parse(text), send }
  }

  it('with a user_id tag: the tagged column first as user_id, the others by label in order', async () => {
    const prefix = `t${randomUUID().slice(0, 6)}`
    const rows = 300
    const result = await pipeline.execute({
      look: look(prefix, rows, FIELDS),
      mode: 'streamed',
      scheduledPlanId: 901,
      action: 'recurly_engage',
    })
    expect(result.looker.success).toBe(true)
    const { records, text, send } = await fileOf(result.looker.send_id!)
    expect(send.accepted).toBe(rows)
    expect(send.delivered).toBe(rows)
    expect(records.length - 1).toBe(rows)
    // Byte for byte, in the file's row order (partition by partition): every row once.
    const order = records.slice(1).map((r) => Number(r[0]!.slice(prefix.length + 1)))
    expect(new Set(order).size).toBe(rows)
    expect(text).toBe(
      'user_id,Users Email,Users Note,Users VIP,Orders LTV\r\n' +
        order
          .map((i) => `${prefix}-${i},${prefix}-${i}@example.com,${noteCell(i)},${i % 2 === 0},${i * 1.5}\r\n`)
          .join(''),
    )
  })

  it('without a user_id tag: the first column becomes user_id', async () => {
    const prefix = `n${randomUUID().slice(0, 6)}`
    const untagged = {
      dimensions: FIELDS.dimensions.map((field) => ({ ...field, tags: [] })),
      measures: FIELDS.measures,
    }
    const result = await pipeline.execute({
      look: look(prefix, 40, untagged),
      mode: 'streamed',
      scheduledPlanId: 902,
      action: 'recurly_engage',
    })
    expect(result.looker.success).toBe(true)
    const { records, text, send } = await fileOf(result.looker.send_id!)
    expect(send.accepted).toBe(40)
    expect(send.delivered).toBe(40)
    expect(records.length - 1).toBe(40)
    const order = records.slice(1).map((r) => Number(r[1]!.slice(prefix.length + 1)))
    expect(new Set(order).size).toBe(40)
    expect(text).toBe(
      'user_id,Users ID,Users Note,Users VIP,Orders LTV\r\n' +
        order
          .map((i) => `${prefix}-${i}@example.com,${prefix}-${i},${noteCell(i)},${i % 2 === 0},${i * 1.5}\r\n`)
          .join(''),
    )
  })

  it('a send whose Looker stream breaks writes no file; the send record says why', async () => {
    const prefix = `b${randomUUID().slice(0, 6)}`
    const result = await pipeline.execute({
      look: look(prefix, 25, FIELDS, ',{"users.id":'),
      mode: 'streamed',
      scheduledPlanId: 903,
      action: 'recurly_engage',
    })
    expect(result.looker.success).toBe(false)
    const sendId = result.looker.send_id!
    const record = await waitFor(
      async () => {
        const r = await pipeline.getSend(sendId)
        return typeof r.fileError === 'string' ? r : undefined
      },
      { timeoutMs: 60_000 },
    )
    expect(record.fileError).toMatch(/^the send failed at the ingress \(.+\); no file is written$/)
    expect(record.file).toBeUndefined()
    // The send's staged rows are deleted right after the send is closed.
    await waitFor(
      async () => {
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }))
        return (listed.Contents ?? []).every((o) => !(o.Key ?? '').startsWith(`lookstream-staging/${sendId}/`))
      },
      { timeoutMs: 30_000, message: "the send's staged rows deleted" },
    )
    // No file holds this send (another send started in the same second may hold the plain name).
    const files = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'ingest/' }))
    for (const object of files.Contents ?? []) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: object.Key }))
      expect(head.Metadata?.['lookstream-send-id']).not.toBe(sendId)
    }
  }, 90_000)
})
