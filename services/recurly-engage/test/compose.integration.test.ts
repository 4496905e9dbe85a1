import {
  ChunkWriter,
  RowCountMismatch,
  chunkKey,
  composeBody,
  listChunks,
  type ChunkReadRetry,
} from '@lookstream/destination'
import { s3Client } from '@lookstream/testing'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { startS3FaultProxy, type S3FaultProxy } from './s3-fault-proxy.ts'
import { createBucket, newSink, uniqueBucket } from './s3-helpers.ts'
import type { S3Sink } from '../src/s3-sink.ts'

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = []
  for await (const part of stream as AsyncIterable<Buffer>) parts.push(part)
  return Buffer.concat(parts).toString('utf8')
}

function chunk(rows: [offset: number, line: string][]): Buffer {
  const writer = new ChunkWriter('user_id,a\r\n')
  for (const [offset, line] of rows) writer.addRow(String(offset), line)
  return writer.body()
}

// Chunks staged twice around a crash overlap: the file still holds every row once (staged through S3Sink).
describe('composing a send from staged chunks', () => {
  let sink: S3Sink
  beforeAll(async () => {
    const endpoint = inject('s3Endpoint')
    const bucket = uniqueBucket()
    await createBucket(s3Client(endpoint), bucket)
    sink = newSink(endpoint, bucket)
  })

  it('takes every row once when chunks written before and after a crash overlap', async () => {
    const send = randomUUID()
    const row = (o: number) => [o, `u${o},${o}\r\n`] as [number, string]
    // Before the crash: 10..14 and 15..19 (offsets not committed); after: 10..17 and 18..21, other writer ids.
    await sink.putStaged(chunkKey(send, 't', 0, '10', 'before'), chunk([10, 11, 12, 13, 14].map(row)))
    await sink.putStaged(chunkKey(send, 't', 0, '15', 'before'), chunk([15, 16, 17, 18, 19].map(row)))
    await sink.putStaged(chunkKey(send, 't', 0, '10', 'after'), chunk([10, 11, 12, 13, 14, 15, 16, 17].map(row)))
    await sink.putStaged(chunkKey(send, 't', 0, '18', 'after'), chunk([18, 19, 20, 21].map(row)))
    await sink.putStaged(chunkKey(send, 't', 1, '3', 'before'), chunk([3, 9].map(row)))
    const chunks = await listChunks(sink, send)
    const body = await text(composeBody(sink, chunks, 14))
    // Source t~0 (offsets 10..21 once each, in order) before t~1 (3, 9).
    const lines = [...Array.from({ length: 12 }, (_, i) => i + 10), 3, 9].map((o) => `u${o},${o}\r\n`)
    expect(body).toBe(`user_id,a\r\n${lines.join('')}`)
  })

  it('ends with RowCountMismatch when rows are missing, so no publish completes', async () => {
    const send = randomUUID()
    await sink.putStaged(
      chunkKey(send, 't', 0, '1', 'w'),
      chunk([
        [1, 'a\r\n'],
        [2, 'b\r\n'],
      ]),
    )
    const chunks = await listChunks(sink, send)
    await expect(text(composeBody(sink, chunks, 3))).rejects.toBeInstanceOf(RowCountMismatch)
    await expect(text(composeBody(sink, chunks, 1))).rejects.toBeInstanceOf(RowCountMismatch)
    expect(await text(composeBody(sink, chunks, 2))).toBe('user_id,a\r\na\r\nb\r\n')
  })
})

// A read of a staged chunk that fails half-way (the connection breaks off inside the body, which the SDK cannot
// retry) is read again from the chunk's start, and only the rows not yet taken are taken.
describe('composing when reading a staged chunk fails', () => {
  let proxy: S3FaultProxy
  let sink: S3Sink
  beforeAll(async () => {
    const endpoint = inject('s3Endpoint')
    const bucket = uniqueBucket()
    await createBucket(s3Client(endpoint), bucket)
    proxy = await startS3FaultProxy(endpoint)
    sink = newSink(proxy.endpoint, bucket)
  })
  afterAll(async () => {
    await proxy.close()
  })

  const line = (o: number) => `user-${o},${'x'.repeat(40)}\r\n`
  /** Two sources, 200 rows each: every chunk is far longer than the 1,000 bytes a cut read delivers. */
  async function stage(): Promise<{ send: string; expected: string }> {
    const send = randomUUID()
    for (const source of [0, 1]) {
      const offsets = Array.from({ length: 200 }, (_, i) => source * 1000 + i)
      await sink.putStaged(
        chunkKey(send, 't', source, String(offsets[0]), 'w'),
        chunk(offsets.map((o) => [o, line(o)])),
      )
    }
    const all = [...Array.from({ length: 200 }, (_, i) => i), ...Array.from({ length: 200 }, (_, i) => 1000 + i)]
    return { send, expected: `user_id,a\r\n${all.map(line).join('')}` }
  }
  const waits: number[] = []
  const retry = (attempts: number): ChunkReadRetry => ({
    attempts,
    wait: (attempt) => {
      waits.push(attempt)
      return Promise.resolve()
    },
  })

  it('reads the chunk again after its body broke off, and holds every row once', async () => {
    const { send, expected } = await stage()
    const chunks = await listChunks(sink, send)
    waits.length = 0
    // The first read of the first chunk breaks off after 1,000 bytes (about 20 rows).
    proxy.set({ kind: 'cut', afterBytes: 1000, times: 1, only: { method: 'GET', urlIncludes: send } })
    expect(await text(composeBody(sink, chunks, 400, retry(3)))).toBe(expected)
    expect(proxy.injected()).toBe(1)
    expect(waits).toEqual([1])
  })

  it('without tries left, the body ends with the read error (a single try by default)', async () => {
    const { send } = await stage()
    const chunks = await listChunks(sink, send)
    waits.length = 0
    proxy.set({ kind: 'cut', afterBytes: 1000, times: 3, only: { method: 'GET', urlIncludes: send } })
    await expect(text(composeBody(sink, chunks, 400, retry(3)))).rejects.toThrow()
    expect(waits).toEqual([1, 2])
    // The same cut with a single try, as composeBody reads by default.
    proxy.set({ kind: 'cut', afterBytes: 1000, times: 1, only: { method: 'GET', urlIncludes: send } })
    await expect(text(composeBody(sink, chunks, 400))).rejects.toThrow()
    proxy.set({ kind: 'pass' })
  })
})
