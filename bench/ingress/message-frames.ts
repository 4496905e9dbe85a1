import { closeSync, openSync, readSync } from 'node:fs'

// Kafka records (key, value, headers) as length-prefixed frames in a file, so the bare producer can read
// the ingress's exact messages back cheaply, without a JSON parse per record:
//   u32 frame length | u32 key length | key | u32 value length | value | u32 header count |
//   per header: u32 name length | name | u32 value length | value            (all lengths in bytes, BE)

export interface FramedRecord {
  key: string
  value: string
  headers: Record<string, string>
}

export function encodeFrame(record: FramedRecord): Buffer {
  const parts: Buffer[] = []
  const put = (text: string) => {
    const bytes = Buffer.from(text)
    const length = Buffer.alloc(4)
    length.writeUInt32BE(bytes.length)
    parts.push(length, bytes)
  }
  put(record.key)
  put(record.value)
  const entries = Object.entries(record.headers)
  const count = Buffer.alloc(4)
  count.writeUInt32BE(entries.length)
  parts.push(count)
  for (const [name, value] of entries) {
    put(name)
    put(value)
  }
  const body = Buffer.concat(parts)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length)
  return Buffer.concat([head, body])
}

/** Reads frames from a file in large chunks, `count` records at a time. */
export class FrameReader {
  private readonly fd: number
  private buffer = Buffer.alloc(0)
  private eof = false

  constructor(path: string) {
    this.fd = openSync(path, 'r')
  }

  next(count: number): FramedRecord[] {
    const records: FramedRecord[] = []
    while (records.length < count) {
      if (this.buffer.length < 4 || this.buffer.length < 4 + this.buffer.readUInt32BE(0)) {
        if (this.eof) break
        this.fill()
        continue
      }
      const end = 4 + this.buffer.readUInt32BE(0)
      let at = 4
      const take = () => {
        const length = this.buffer.readUInt32BE(at)
        const text = this.buffer.toString('utf8', at + 4, at + 4 + length)
        at += 4 + length
        return text
      }
      const key = take()
      const value = take()
      const headers: Record<string, string> = {}
      const headerCount = this.buffer.readUInt32BE(at)
      at += 4
      for (let h = 0; h < headerCount; h++) {
        const name = take()
        headers[name] = take()
      }
      records.push({ key, value, headers })
      this.buffer = this.buffer.subarray(end)
    }
    return records
  }

  close(): void {
    closeSync(this.fd)
  }

  private fill(): void {
    const chunk = Buffer.allocUnsafe(4 * 1024 * 1024)
    const read = readSync(this.fd, chunk, 0, chunk.length, null)
    if (read === 0) this.eof = true
    else this.buffer = Buffer.concat([this.buffer, chunk.subarray(0, read)])
  }
}
