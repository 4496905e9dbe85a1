import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { ChunkWriter, chunkKey, parseChunkKey, readFrames } from '../src/file/staged-chunk.ts'

async function frames(pieces: Buffer[]) {
  const out: { offset: string | undefined; text: string }[] = []
  for await (const frame of readFrames(Readable.from(pieces))) {
    out.push({ offset: frame.offset?.toString(), text: frame.data.toString('utf8') })
  }
  return out
}

describe('staged chunks', () => {
  it('round-trips the header and rows byte for byte, however the stream is cut', async () => {
    const writer = new ChunkWriter('user_id,Name\r\n')
    writer.addRow('17', 'u1,"a\r\nb"\r\n')
    writer.addRow('42', 'u2,中文 😀\r\n')
    writer.addRow('43', 'u3,\r\n')
    const body = writer.body()
    expect(writer.bytes).toBe(body.length)
    expect(writer.rows).toBe(3)
    const expected = [
      { offset: undefined, text: 'user_id,Name\r\n' },
      { offset: '17', text: 'u1,"a\r\nb"\r\n' },
      { offset: '42', text: 'u2,中文 😀\r\n' },
      { offset: '43', text: 'u3,\r\n' },
    ]
    expect(await frames([body])).toEqual(expected)
    // One byte at a time: frame headers and multi-byte characters split across reads.
    expect(await frames([...body].map((byte) => Buffer.from([byte])))).toEqual(expected)
  })

  it('grows its buffer past the chunk size it was given for a row that needs it, and no further', async () => {
    const writer = new ChunkWriter('id\r\n', 64)
    const long = `${'x'.repeat(200)}\r\n`
    const rows = Array.from({ length: 40 }, (_, i) => (i % 7 === 3 ? `${i},${long}` : `${i},é\r\n`))
    rows.forEach((row, i) => writer.addRow(String(i), row))
    expect(writer.body().length).toBe(writer.bytes)
    // Past the hint the buffer grows only to what each row needs.
    expect(writer.capacity).toBe(writer.bytes)
    expect(await frames([writer.body()])).toEqual([
      { offset: undefined, text: 'id\r\n' },
      ...rows.map((text, i) => ({ offset: String(i), text })),
    ])
  })

  it('refuses a truncated or corrupt chunk', async () => {
    const writer = new ChunkWriter('h\r\n')
    writer.addRow('1', 'row\r\n')
    const body = writer.body()
    await expect(frames([body.subarray(0, body.length - 2)])).rejects.toThrow('truncated')
    await expect(frames([Buffer.from('x 3\nabc')])).rejects.toThrow('bad frame header')
  })

  it('names chunks so that those of one source sort by first offset', () => {
    const key = chunkKey('send-1', 'lookstream.identify.v1', 3, '1200', 'ab12cd34')
    expect(key).toBe('send-1/lookstream.identify.v1~3/00000000000000001200-ab12cd34.rows')
    expect(parseChunkKey(`staging/${key}`)).toEqual({
      source: 'lookstream.identify.v1~3',
      firstOffset: 1200n,
      key: `staging/${key}`,
    })
    expect(parseChunkKey('send-1/other-file.txt')).toBeUndefined()
  })
})
