import { type BatchIndex } from './batch-index.ts'

// One run of consecutive batches starting at baseOffset. The active (last) segment of a partition takes
// appends; older ones are read-only until retention deletes them whole.
export interface Segment {
  readonly baseOffset: number
  readonly index: BatchIndex
  readonly size: number
  // Appends one batch (already patched with its offset); returns after the bytes are handed to the OS.
  append(buf: Buffer, baseOffset: number, lastOffset: number, maxTimestamp: number): void
  // Stored bytes of batches [from, to) as one or more buffers.
  read(from: number, to: number): Buffer[]
  flushIndex(): void
  sync(): void
  close(): void
  remove(): void
}
