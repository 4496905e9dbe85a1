import { BatchIndex } from './batch-index.ts'
import { type Segment } from './segment.ts'

export class MemorySegment implements Segment {
  readonly baseOffset: number
  readonly index = new BatchIndex()
  size = 0
  private batches: Buffer[] = []

  constructor(baseOffset: number) {
    this.baseOffset = baseOffset
  }

  append(buf: Buffer, baseOffset: number, lastOffset: number, maxTimestamp: number): void {
    // Copy so a stored batch does not pin the whole request frame it arrived in.
    this.batches.push(Buffer.from(buf))
    this.index.push(baseOffset, lastOffset, this.size, buf.length, maxTimestamp)
    this.size += buf.length
  }

  read(from: number, to: number): Buffer[] {
    return this.batches.slice(from, to)
  }

  flushIndex(): void {}
  sync(): void {}
  close(): void {}
  remove(): void {
    this.batches = []
  }
}
