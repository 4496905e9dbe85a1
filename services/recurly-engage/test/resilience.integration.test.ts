import { fileSendKeys } from '@lookstream/destination'
import { spawnService, waitFor, type SpawnedService } from '@lookstream/testing'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
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
  type TestSend,
} from './engage-stack.ts'
import { startS3FaultProxy, type S3FaultProxy } from './s3-fault-proxy.ts'
import { readObject, unfinishedUploads } from './s3-helpers.ts'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const PADDING = 'p'.repeat(560)

/** `traits_<start>` of a send's file names (another send of the same second adds a suffix). */
function stampOf(send: TestSend): string {
  const key = expectedName(send)
  return key.slice(key.indexOf('traits_'), key.length - 4)
}

// Kill -9 of the service process at several points of one send, with S3 answering 500 and slowly for a while:
// in the end there is exactly one file for the send, complete (read back through the SDK), no staged chunk and
// no unfinished multipart upload left.
describe('recurly-engage: kill -9 and S3 faults', () => {
  let stack: EngageStack
  let proxy: S3FaultProxy
  const running = new Set<SpawnedService>()

  beforeAll(async () => {
    stack = await startEngageStack(inject('s3Endpoint'))
    proxy = await startS3FaultProxy(stack.s3Endpoint)
  })
  afterEach(async () => {
    for (const service of running) await service.stop('SIGKILL').catch(() => undefined)
    running.clear()
    proxy.set({ kind: 'pass' })
  })
  afterAll(async () => {
    await proxy?.close()
    await stack?.stop()
  })

  async function start(): Promise<SpawnedService> {
    const env = engageEnv(stack, {
      LOG_LEVEL: 'info',
      RECURLY_ENGAGE_S3_ENDPOINT: proxy.endpoint,
      DELIVERY_FILE_CHUNK_BYTES: String(1024 * 1024),
    })
    const service = await spawnService(MAIN, env, { readyTimeoutMs: 60_000 })
    running.add(service)
    return service
  }

  function kill(service: SpawnedService): void {
    service.kill('SIGKILL')
    running.delete(service)
  }

  async function expectOneCompleteFile(send: TestSend, rows: number, padding = PADDING): Promise<void> {
    const key = expectedName(send)
    expect(await waitForFile(stack, send, 90_000)).toBe(key)
    const { records } = await readCsv(stack, key)
    expect(records[0]).toEqual(['user_id', 'Users Row', 'Users Padding'])
    expect(records.length - 1).toBe(rows)
    const users = new Set(records.slice(1).map((record) => record[0]))
    expect(users.size).toBe(rows)
    for (const record of records.slice(1)) expect(record).toEqual([`user-${record[1]}`, record[1], padding])
    await waitFor(async () => (await bucketState(stack)).staged.length === 0, { timeoutMs: 30_000 })
    const state = await bucketState(stack)
    // Only this send's file (other tests' files have other start times): no duplicate under another name.
    expect(state.files.filter((file) => file.includes(stampOf(send)))).toEqual([key])
    expect(state.unfinished).toBe(0)
    expect((await sendRecord(stack, send.sendId)).file).toBe(`s3://${stack.bucket}/${key}`)
  }

  it('a 200,000-row send killed mid-gather and mid-upload, S3 failing and slow: one complete file after the restarts', async () => {
    const rows = 200_000
    // ~55 bytes a row: an 11 MB file, published in three 5 MiB parts.
    const padding = PADDING.slice(0, 32)
    const send = makeSend(rows, (i) => ({ 'Users Row': i, 'Users Padding': padding }))
    const first = await start()
    await produceRows(stack, send, 0, rows / 2)
    // Killed while gathering: some chunks are staged, others only in memory, offsets partly committed.
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
    expect(await readObject(stack.s3, stack.bucket, expectedName(send))).toBeUndefined()
    expect((await bucketState(stack)).files.filter((file) => file.includes(stampOf(send)))).toEqual([])

    // S3 answers 500 to everything for a while, then slowly, then normally.
    proxy.set({ kind: 'error', status: 500 })
    await start()
    await waitFor(() => proxy.injected() >= 5, { timeoutMs: 30_000 })
    proxy.set({ kind: 'slow', delayMs: 50 })
    await waitFor(() => proxy.injected() >= 5, { timeoutMs: 1000 })
    proxy.set({ kind: 'pass' })
    await expectOneCompleteFile(send, rows, padding)
  }, 480_000)

  it('between publishing the file and recording it: the restart records it, no second file', async () => {
    const rows = 500
    const send = makeSend(rows, (i) => ({ 'Users Row': i, 'Users Padding': PADDING }))
    const first = await start()
    await produceRows(stack, send)
    await finishSend(stack, send, rows)
    await waitFor(() => readObject(stack.s3, stack.bucket, expectedName(send)), { timeoutMs: 60_000, intervalMs: 5 })
    kill(first)
    await start()
    await expectOneCompleteFile(send, rows)
  }, 120_000)

  it('a send failed after its upload started: no unfinished upload and no staged chunk left, even when S3 refused the abort', async () => {
    const rows = 12_000
    const send = makeSend(rows, (i) => ({ 'Users Row': i, 'Users Padding': PADDING }))
    await start()
    await produceRows(stack, send)
    // Every row staged before the ingress reports one row fewer: the compose finds more rows than accepted only
    // once the file's first 5 MiB part is uploaded, and fails the send.
    await waitFor(
      async () =>
        (await stack.redisClient.hget(fileSendKeys('recurly-engage', send.sendId).send, 'staged')) === String(rows),
      { timeoutMs: 60_000, message: 'every row staged' },
    )
    proxy.set({ kind: 'error', status: 500, only: { method: 'DELETE', urlIncludes: 'uploadId=' } })
    await finishSend(stack, send, rows - 1)
    const record = await waitFor(
      async () => {
        const r = await sendRecord(stack, send.sendId)
        return r.file_error === undefined ? undefined : r
      },
      { timeoutMs: 60_000 },
    )
    expect(record.file_error).toBe(
      `the send has more rows than the ${rows - 1} the ingress accepted; no file is written`,
    )
    // The upload's own abort was refused: its parts are still there, under no visible object.
    expect(await unfinishedUploads(stack.s3, stack.bucket, 'ingest/')).toBe(1)
    expect((await bucketState(stack)).files.filter((file) => file.includes(stampOf(send)))).toEqual([])
    const refused = proxy.injected()
    await waitFor(() => proxy.injected() > refused, { timeoutMs: 30_000, message: 'the cleanup retried the abort' })
    proxy.set({ kind: 'pass' })
    await waitFor(async () => (await unfinishedUploads(stack.s3, stack.bucket)) === 0, {
      timeoutMs: 30_000,
      message: 'the unfinished upload aborted',
    })
    await waitFor(async () => (await bucketState(stack)).staged.length === 0, {
      timeoutMs: 30_000,
      message: 'staging cleaned up',
    })
    expect(await readObject(stack.s3, stack.bucket, expectedName(send))).toBeUndefined()
  }, 180_000)
})
