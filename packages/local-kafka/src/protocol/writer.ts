// Builds one response as a list of chunks: scalars go into a growing scratch buffer, large byte fields
// (record batches read from the log) are referenced as-is so the fetch path never copies them.
const INLINE_LIMIT = 512

export class Writer {
  private chunks: Buffer[] = []
  private buf: Buffer
  private pos = 0
  private flushedLength = 0

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial)
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n))
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  get length(): number {
    return this.flushedLength + this.pos
  }

  int8(v: number): void {
    this.ensure(1)
    this.buf.writeInt8(v, this.pos)
    this.pos += 1
  }

  int16(v: number): void {
    this.ensure(2)
    this.buf.writeInt16BE(v, this.pos)
    this.pos += 2
  }

  int32(v: number): void {
    this.ensure(4)
    this.buf.writeInt32BE(v, this.pos)
    this.pos += 4
  }

  uint32(v: number): void {
    this.ensure(4)
    this.buf.writeUInt32BE(v >>> 0, this.pos)
    this.pos += 4
  }

  int64(v: number): void {
    this.ensure(8)
    const hi = Math.floor(v / 4294967296)
    this.buf.writeInt32BE(hi, this.pos)
    this.buf.writeUInt32BE(v - hi * 4294967296, this.pos + 4)
    this.pos += 8
  }

  float64(v: number): void {
    this.ensure(8)
    this.buf.writeDoubleBE(v, this.pos)
    this.pos += 8
  }

  bool(v: boolean): void {
    this.int8(v ? 1 : 0)
  }

  uvarint(v: number): void {
    this.ensure(5)
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80
      v = Math.floor(v / 128)
    }
    this.buf[this.pos++] = v
  }

  varint(v: number): void {
    this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1)
  }

  raw(b: Buffer): void {
    if (b.length <= INLINE_LIMIT) {
      this.ensure(b.length)
      b.copy(this.buf, this.pos)
      this.pos += b.length
      return
    }
    this.flush()
    this.chunks.push(b)
    this.flushedLength += b.length
  }

  nullableString(v: string | null): void {
    if (v === null) return this.int16(-1)
    const len = Buffer.byteLength(v)
    this.int16(len)
    this.ensure(len)
    this.pos += this.buf.write(v, this.pos)
  }

  compactNullableString(v: string | null): void {
    if (v === null) return this.uvarint(0)
    const len = Buffer.byteLength(v)
    this.uvarint(len + 1)
    this.ensure(len)
    this.pos += this.buf.write(v, this.pos)
  }

  nullableBytes(v: Buffer | null): void {
    if (v === null) return this.int32(-1)
    this.int32(v.length)
    this.raw(v)
  }

  compactNullableBytes(v: Buffer | null): void {
    if (v === null) return this.uvarint(0)
    this.uvarint(v.length + 1)
    this.raw(v)
  }

  // Record sets from the log arrive as a list of stored batches; they are referenced, not copied.
  records(v: Buffer[] | Buffer | null, compact: boolean): void {
    if (v === null) return compact ? this.uvarint(0) : this.int32(-1)
    const list = Array.isArray(v) ? v : [v]
    let total = 0
    for (const b of list) total += b.length
    if (compact) this.uvarint(total + 1)
    else this.int32(total)
    for (const b of list) this.raw(b)
  }

  private flush(): void {
    if (this.pos === 0) return
    this.chunks.push(this.buf.subarray(0, this.pos))
    this.flushedLength += this.pos
    this.buf = this.buf.subarray(this.pos)
    this.pos = 0
    if (this.buf.length < 64) this.buf = Buffer.allocUnsafe(256)
  }

  finish(): Buffer[] {
    this.flush()
    return this.chunks
  }
}
