import { fileOpenSetKey, fileSendKeys } from '@lookstream/destination'
import { TOPICS, headersFor } from '@lookstream/events'
import { spawnService, waitFor, type SpawnedService } from '@lookstream/testing'
import type { Cluster } from 'ioredis'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import {
  PARTITIONS,
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
  type TestSend,
} from './engage-stack.ts'
import { startS3FaultProxy, type S3FaultProxy } from './s3-fault-proxy.ts'
import { readObject, unfinishedUploads } from './s3-helpers.ts'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const PADDING = 'p'.repeat(560)

// Cell values and their RFC 4180 encoding, written out by hand.
const CELLS: [value: string | number | boolean | null, encoded: string][] = [
  ['plain', 'plain'],
  ['comma, inside', '"comma, inside"'],
  ['quote " inside', '"quote "" inside"'],
  ['line\nbreak', '"line\nbreak"'],
  ['crlf\r\nbreak', '"crlf\r\nbreak"'],
  ['Zoë Ünal 中文 😀', 'Zoë Ünal 中文 😀'],
  ['', ''],
  [null, ''],
  [12.5, '12.5'],
  [false, 'false'],
]

// The recurly-engage service with its state on a 3-master Redis Cluster (redis-server processes on loopback):
// every script of the file runtime touches one send's keys, which share one hash slot.
describe('recurly-engage on a Redis Cluster', () => {
  let stack: EngageStack
  let proxy: S3FaultProxy
  const running = new Set<SpawnedService>()

  beforeAll(async () => {
    stack = await startEngageStack(inject('s3Endpoint'), { redis: 'cluster' })
    proxy = await startS3FaultProxy(stack.s3Endpoint)
  }, 120_000)
  afterEach(async () => {
    for (const service of running) await service.stop('SIGKILL').catch(() => undefined)
    running.clear()
    proxy.set({ kind: 'pass' })
  })
  afterAll(async () => {
    await proxy?.close()
    await stack?.stop()
  })

  async function start(extra: Record<string, string> = {}): Promise<SpawnedService> {
    const env = engageEnv(stack, {
      LOG_LEVEL: 'info',
      RECURLY_ENGAGE_S3_ENDPOINT: proxy.endpoint,
      DELIVERY_FILE_CHUNK_BYTES: String(1024 * 1024),
      ...extra,
    })
    const service = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    running.add(service)
    return service
  }

  function kill(service: SpawnedService): void {
    service.kill('SIGKILL')
    running.delete(service)
  }

  const cluster = () => stack.redisClient as Cluster

  async function expectSendForgotten(send: TestSend): Promise<void> {
    await waitFor(async () => !(await cluster().sismember(fileOpenSetKey('recurly-engage'), send.sendId)), {
      timeoutMs: 30_000,
      message: 'the send left the open set',
    })
  }

  it("keeps the keys of one send on one slot, other sends' elsewhere", async () => {
    const keys = fileSendKeys('recurly-engage', 'a-send-id')
    const slots = await Promise.all(
      [keys.send, keys.rejected, keys.lock].map((key) => cluster().cluster('KEYSLOT', key)),
    )
    expect(new Set(slots).size).toBe(1)
    // Another send's keys hash elsewhere (these two ids are on different slots), so sends spread over the slots.
    const other = fileSendKeys('recurly-engage', 'another-send-id')
    expect(await cluster().cluster('KEYSLOT', other.send)).not.toBe(slots[0])
  })

  it('publishes a send spread over every partition as one byte-exact CSV', async () => {
    const rows = 4000
    const send = makeSend(rows, (i) => ({ 'Users Name': CELLS[i % CELLS.length]![0], 'Users Row': i }))
    await start()
    // Row i to partition i % PARTITIONS, in order: the file holds partition 0's rows, then 1's, and so on.
    await Promise.all(
      send.messages.map((message, i) =>
        stack.producer.send({
          topic: TOPICS.identify,
          key: message.userId ?? null,
          partition: i % PARTITIONS,
          value: JSON.stringify(message),
          headers: headersFor(message, { producer: 'ingress', sendId: send.sendId }),
        }),
      ),
    )
    await finishSend(stack, send, rows)
    const key = expectedName(send)
    expect(await waitForFile(stack, send, 60_000)).toBe(key)

    let expected = 'user_id,Users Name,Users Row\r\n'
    for (let partition = 0; partition < PARTITIONS; partition++) {
      for (let i = partition; i < rows; i += PARTITIONS) expected += `user-${i},${CELLS[i % CELLS.length]![1]},${i}\r\n`
    }
    const bytes = await readObject(stack.s3, stack.bucket, key)
    expect(bytes?.toString('utf8')).toBe(expected)
    expect(bytes?.equals(Buffer.from(expected, 'utf8'))).toBe(true)

    const record = await sendRecord(stack, send.sendId)
    expect(record.file).toBe(`s3://${stack.bucket}/${key}`)
    expect(record.delivered).toBe(String(rows))
    const state = await cluster().hgetall(fileSendKeys('recurly-engage', send.sendId).send)
    expect(state).toMatchObject({ outcome: 'published', rows: String(rows), staged: String(rows) })
    await expectSendForgotten(send)
    await waitFor(async () => (await bucketState(stack)).staged.length === 0, { message: 'staging cleaned up' })
    expect(await unfinishedUploads(stack.s3, stack.bucket)).toBe(0)
  }, 120_000)

  it('gives exactly one complete object after kill -9 mid-gather and mid-upload', async () => {
    const rows = 12_000
    const send = makeSend(rows, (i) => ({ 'Users Row': i, 'Users Padding': PADDING }))
    const first = await start()
    await produceRows(stack, send, 0, rows / 2)
    // Killed while gathering: some chunks staged, others only in memory, offsets partly committed.
    await waitFor(async () => (await bucketState(stack)).staged.length >= 2, { timeoutMs: 30_000 })
    kill(first)

    const second = await start()
    await produceRows(stack, send, rows / 2, rows)
    await finishSend(stack, send, rows)
    // Killed while the file's multipart upload is under way (S3 slow, so the upload lasts).
    proxy.set({ kind: 'slow', delayMs: 150 })
    await waitFor(() => unfinishedUploads(stack.s3, stack.bucket, 'ingest/'), { timeoutMs: 90_000, intervalMs: 20 })
    kill(second)
    // Nothing of the interrupted upload is visible under the upload location.
    const stamp = expectedName(send).slice(expectedName(send).indexOf('traits_'), -4)
    expect(await readObject(stack.s3, stack.bucket, expectedName(send))).toBeUndefined()
    expect((await bucketState(stack)).files.filter((file) => file.includes(stamp))).toEqual([])

    proxy.set({ kind: 'pass' })
    await start()
    const key = expectedName(send)
    expect(await waitForFile(stack, send, 90_000)).toBe(key)
    const { records } = await readCsv(stack, key)
    expect(records[0]).toEqual(['user_id', 'Users Row', 'Users Padding'])
    expect(records.length - 1).toBe(rows)
    expect(new Set(records.slice(1).map((record) => record[0])).size).toBe(rows)
    for (const record of records.slice(1)) expect(record).toEqual([`user-${record[1]}`, record[1], PADDING])
    await waitFor(async () => (await bucketState(stack)).staged.length === 0, { timeoutMs: 30_000 })
    const state = await bucketState(stack)
    expect(state.files.filter((file) => file.includes(stamp))).toEqual([key])
    expect(state.unfinished).toBe(0)
    await expectSendForgotten(send)
  }, 240_000)
})
