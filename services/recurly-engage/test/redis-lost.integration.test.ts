import { fileSendKeys, runFileDestination, type RunningDestination } from '@lookstream/destination'
import { waitFor } from '@lookstream/testing'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
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
  type TestSend,
} from './engage-stack.ts'
import { startS3FaultProxy, type S3FaultProxy } from './s3-fault-proxy.ts'
import { listKeys } from './s3-helpers.ts'

const HEADER = ['user_id', 'Users Row', 'Users Padding']
const PADDING = 'p'.repeat(200)

function rowsOf(i: number): Record<string, unknown> {
  return { 'Users Row': i, 'Users Padding': PADDING }
}

/**
 * One stack (local-kafka, redis-server, S3 behind a fault proxy) and the service in-process for a describe block,
 * with what the tests below look at.
 */
function lossHarness(discoverMs: string) {
  const h = {} as { stack: EngageStack; proxy: S3FaultProxy; service: RunningDestination }

  beforeAll(async () => {
    h.stack = await startEngageStack(inject('s3Endpoint'))
    h.proxy = await startS3FaultProxy(h.stack.s3Endpoint)
    h.service = await runFileDestination(recurlyEngage, {
      env: engageEnv(h.stack, { RECURLY_ENGAGE_S3_ENDPOINT: h.proxy.endpoint, DELIVERY_FILE_DISCOVER_MS: discoverMs }),
    })
  })
  afterEach(() => {
    h.proxy.set({ kind: 'pass' })
  })
  afterAll(async () => {
    await h.service?.close()
    await h.proxy?.close()
    await h.stack?.stop()
  })

  async function metric(name: string, labels: string): Promise<number> {
    const text = await (await fetch(`${h.service.address.url}/metrics`)).text()
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels))
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
  }

  /** The send's files under the upload location (a second publish would take the name with the id suffix). */
  async function filesOf(send: TestSend): Promise<string[]> {
    const stamp = expectedName(send).replace(/\.csv$/, '')
    return (await listKeys(h.stack.s3, h.stack.bucket, 'ingest/')).filter((key) => key.startsWith(stamp))
  }

  async function stagedOf(send: TestSend): Promise<string[]> {
    return (await bucketState(h.stack)).staged.filter((key) => key.includes(send.sendId))
  }

  return {
    h,
    metric,
    adopted: (state: string) => metric('lookstream_destination_file_sends_adopted_total', `state="${state}"`),
    files: (outcome: string) => metric('lookstream_destination_files_total', `outcome="${outcome}"`),
    sendState: (send: TestSend, field: string): Promise<string | null> =>
      h.stack.redisClient.hget(fileSendKeys('recurly-engage', send.sendId).send, field),
    flushRedis: async (): Promise<void> => {
      expect(await h.stack.redisClient.flushall()).toBe('OK')
    },
    filesOf,
    stagedOf,
    expectOneCompleteFile: async (send: TestSend, rows: number): Promise<void> => {
      // The staging folder is deleted only after the file is published and the send closed.
      await waitFor(async () => (await stagedOf(send)).length === 0, {
        timeoutMs: 60_000,
        message: "the send's staging folder deleted",
      })
      expect(await filesOf(send)).toEqual([expectedName(send)])
      const { records } = await readCsv(h.stack, expectedName(send))
      expect(records[0]).toEqual(HEADER)
      expect(records.length - 1).toBe(rows)
      const users = new Set(records.slice(1).map((record) => record[0]))
      expect(users.size).toBe(rows)
      for (const record of records.slice(1)) expect(record).toEqual([`user-${record[1]}`, record[1], PADDING])
      expect((await bucketState(h.stack)).unfinished).toBe(0)
    },
  }
}

// Redis comes back empty (a server without persistence restarted, a failover to a replica that lost data) while
// sends are open: their `finished` events are consumed and committed, the open set is gone. Each send is still
// finished from what its staging folder holds: one complete file, or its failure, and nothing left staged.
describe('recurly-engage: Redis loses its data while sends are open', () => {
  const { h, adopted, files, sendState, flushRedis, filesOf, stagedOf, expectOneCompleteFile } = lossHarness('500')

  it('a send staged and finished, Redis emptied before it was composed: published once with every row', async () => {
    const rows = 2000
    const send = makeSend(rows, rowsOf)
    const before = await adopted('finished')
    // The name check fails, so the send cannot be composed before Redis loses it.
    h.proxy.set({ kind: 'error', status: 500, only: { method: 'HEAD', urlIncludes: '/ingest/' } })
    await produceRows(h.stack, send)
    await finishSend(h.stack, send, rows)
    await waitFor(async () => (await sendState(send, 'staged')) === String(rows), { timeoutMs: 30_000 })
    await waitFor(() => h.proxy.injected() > 0, { timeoutMs: 30_000, message: 'a compose attempted' })
    expect(await sendState(send, 'status')).toBe('succeeded')
    await flushRedis()
    // Adopted while the name check still fails (a compose under way when Redis lost its data may otherwise
    // publish from what it read before).
    await waitFor(async () => (await adopted('finished')) > before, { timeoutMs: 30_000, message: 'adopted' })
    h.proxy.set({ kind: 'pass' })
    await expectOneCompleteFile(send, rows)
  }, 120_000)

  it('a send partly staged when Redis is emptied, the rest arriving after: one complete file', async () => {
    const rows = 3000
    const send = makeSend(rows, rowsOf)
    await produceRows(h.stack, send, 0, rows / 2)
    await waitFor(async () => (await sendState(send, 'staged')) === String(rows / 2), { timeoutMs: 30_000 })
    await flushRedis()
    await produceRows(h.stack, send, rows / 2, rows)
    await finishSend(h.stack, send, rows)
    expect(await waitForFile(h.stack, send, 60_000)).toBe(expectedName(send))
    await expectOneCompleteFile(send, rows)
    expect((await sendRecord(h.stack, send.sendId)).delivered).toBe(String(rows))
  }, 120_000)

  it('a send published but not yet cleaned up when Redis is emptied: not published again, its staging deleted', async () => {
    const rows = 1000
    const send = makeSend(rows, rowsOf)
    const before = await adopted('closed')
    const published = await files('published')
    // Deleting the staged objects fails: the send stays closed with its staging folder in place.
    h.proxy.set({ kind: 'error', status: 500, only: { method: 'POST', urlIncludes: 'delete' } })
    await produceRows(h.stack, send)
    await finishSend(h.stack, send, rows)
    expect(await waitForFile(h.stack, send, 60_000)).toBe(expectedName(send))
    const refused = h.proxy.injected()
    await waitFor(() => h.proxy.injected() > refused, { timeoutMs: 30_000, message: 'the cleanup tried again' })
    expect(await stagedOf(send)).toContain(`lookstream-staging/${send.sendId}/closed.json`)
    await flushRedis()
    // Adopted as closed while deleting still fails (a cleanup under way when Redis lost its data may otherwise
    // finish first), never composed again.
    await waitFor(async () => (await adopted('closed')) > before, { timeoutMs: 30_000, message: 'adopted as closed' })
    h.proxy.set({ kind: 'pass' })
    await expectOneCompleteFile(send, rows)
    expect(await files('published')).toBe(published + 1)
  }, 120_000)

  it('a send with a rejected row, Redis emptied before its finished event: failed, not waiting for the row', async () => {
    const rows = 40
    const send = makeSend(rows, (i) => (i === 7 ? { 'Users Row': { city: 'secret-city' } } : rowsOf(i)))
    const failed = await files('failed')
    await produceRows(h.stack, send)
    await waitFor(
      async () =>
        (await sendState(send, 'staged')) === String(rows - 1) &&
        (await h.stack.redisClient.hlen(fileSendKeys('recurly-engage', send.sendId).rejected)) === 1,
      { timeoutMs: 30_000, message: 'every row staged or rejected' },
    )
    await flushRedis()
    await finishSend(h.stack, send, rows)
    const record = await waitFor(
      async () => {
        const r = await sendRecord(h.stack, send.sendId)
        return r.file_error === undefined ? undefined : r
      },
      { timeoutMs: 60_000 },
    )
    expect(record.file_error).toContain(`1 of ${rows} rows could not be written (LS_DEST_UNSUPPORTED_VALUE`)
    expect(record.file_error).not.toContain('secret-city')
    await waitFor(async () => (await stagedOf(send)).length === 0, { timeoutMs: 30_000, message: 'staging deleted' })
    expect(await filesOf(send)).toEqual([])
    expect(await files('failed')).toBe(failed + 1)
  }, 120_000)

  it('leaves a send Redis knows alone: no adoption on the normal path', async () => {
    const rows = 500
    const send = makeSend(rows, rowsOf)
    const before = (await adopted('open')) + (await adopted('finished')) + (await adopted('closed'))
    await produceRows(h.stack, send)
    await waitFor(async () => (await sendState(send, 'staged')) === String(rows), { timeoutMs: 30_000 })
    expect(await sendState(send, 'origin')).toBe('new')
    // Several discoveries pass over the staged send before it finishes.
    const listed = h.proxy.seen('delimiter=')
    await waitFor(() => h.proxy.seen('delimiter=') >= listed + 3, { timeoutMs: 30_000 })
    expect(await sendState(send, 'staged')).toBe(String(rows))
    await finishSend(h.stack, send, rows)
    expect(await waitForFile(h.stack, send, 60_000)).toBe(expectedName(send))
    await expectOneCompleteFile(send, rows)
    expect((await adopted('open')) + (await adopted('finished')) + (await adopted('closed'))).toBe(before)
  }, 120_000)
})

// A redis-server without persistence restarted: the sends it lost are looked for as soon as it is back, not at the
// next periodic listing (10 minutes here).
describe('recurly-engage: redis-server restarted empty', () => {
  const { h, adopted, sendState, expectOneCompleteFile, metric } = lossHarness('600000')

  it('reports the outage on its Redis gauge while idle, and its return', async () => {
    const available = () => metric('lookstream_destination_redis_available', 'destination="recurly-engage"')
    expect(await available()).toBe(1)
    await h.stack.restartRedisEmpty(async () => {
      await waitFor(async () => (await available()) === 0, { timeoutMs: 10_000, message: 'the gauge at 0' })
    })
    await waitFor(async () => (await available()) === 1, { timeoutMs: 15_000, message: 'the gauge back at 1' })
  }, 60_000)

  it('a send staged and finished is found when Redis is back and published once with every row', async () => {
    const rows = 1500
    const send = makeSend(rows, rowsOf)
    h.proxy.set({ kind: 'error', status: 500, only: { method: 'HEAD', urlIncludes: '/ingest/' } })
    await produceRows(h.stack, send)
    await finishSend(h.stack, send, rows)
    await waitFor(async () => (await sendState(send, 'staged')) === String(rows), { timeoutMs: 30_000 })
    await waitFor(() => h.proxy.injected() > 0, { timeoutMs: 30_000, message: 'a compose attempted' })
    await h.stack.restartRedisEmpty()
    await waitFor(async () => (await adopted('finished')) === 1, { timeoutMs: 30_000, message: 'adopted' })
    h.proxy.set({ kind: 'pass' })
    await expectOneCompleteFile(send, rows)
  }, 120_000)
})
