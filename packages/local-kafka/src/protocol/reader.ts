// A cursor over one request frame. Every read is bounds-checked by Buffer itself (RangeError), which the
// connection turns into a protocol error for that request instead of crashing the broker.
export class Reader {
  buf: Buffer
  pos: number

  constructor(buf: Buffer, pos = 0) {
    this.buf = buf
    this.pos = pos
  }

  remaining(): number {
    return this.buf.length - this.pos
  }

  int8(): number {
    const v = this.buf.readInt8(this.pos)
    this.pos += 1
    return v
  }

  int16(): number {
    const v = this.buf.readInt16BE(this.pos)
    this.pos += 2
    return v
  }

  int32(): number {
    const v = this.buf.readInt32BE(this.pos)
    this.pos += 4
    return v
  }

  uint32(): number {
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }

  // Offsets, timestamps and producer ids fit in a double; the high word carries the sign.
  int64(): number {
    const hi = this.buf.readInt32BE(this.pos)
    const lo = this.buf.readUInt32BE(this.pos + 4)
    this.pos += 8
    return hi * 4294967296 + lo
  }

  float64(): number {
    const v = this.buf.readDoubleBE(this.pos)
    this.pos += 8
    return v
  }

  bool(): boolean {
    return this.int8() !== 0
  }

  uvarint(): number {
    let result = 0
    let shift = 0
    for (;;) {
      // Up to 10 bytes: record timestamps are varlongs; values beyond 2^53 lose precision, which no offset or
      // timestamp reaches.
      if (shift > 63) throw new RangeError('uvarint too long')
      const b = this.buf[this.pos++]
      if (b === undefined) throw new RangeError('uvarint beyond end of buffer')
      result += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return result
      shift += 7
    }
  }

  varint(): number {
    const z = this.uvarint()
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2
  }

  uuid(): Buffer {
    return this.slice(16)
  }

  slice(len: number): Buffer {
    if (len < 0 || this.pos + len > this.buf.length) throw new RangeError('length beyond end of buffer')
    const out = this.buf.subarray(this.pos, this.pos + len)
    this.pos += len
    return out
  }

  nullableString(): string | null {
    const len = this.int16()
    if (len < 0) return null
    return this.slice(len).toString('utf8')
  }

  compactNullableString(): string | null {
    const len = this.uvarint() - 1
    if (len < 0) return null
    return this.slice(len).toString('utf8')
  }

  nullableBytes(): Buffer | null {
    const len = this.int32()
    if (len < 0) return null
    return this.slice(len)
  }

  compactNullableBytes(): Buffer | null {
    const len = this.uvarint() - 1
    if (len < 0) return null
    return this.slice(len)
  }

  skipTaggedFields(): void {
    const count = this.uvarint()
    for (let i = 0; i < count; i++) {
      this.uvarint()
      this.slice(this.uvarint())
    }
  }
}
