import { ChunkWriter, RowCountMismatch, chunkKey, composeBody, listChunks } from '@lookstream/destination'
import { s3Client } from '@lookstream/testing'
import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, inject, it } from 'vitest'
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
