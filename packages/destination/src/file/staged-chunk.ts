// A staged chunk is an object holding rows of one send taken from one topic-partition, in offset order: first a
// header frame (the encoded header line), then one frame per row. A frame is an ASCII line `<tag> <bytes>\n`
// followed by that many bytes; the tag is `h` for the header and the row's Kafka offset for a row. Chunks are
// named `<sendId>/<topic>~<partition>/<first offset, 20 digits>-<writer>.rows`, so the chunks of a partition
// sort by their first offset, and a chunk written again after a crash (same rows, another writer) never
// replaces one it does not fully cover: the composer merges them by offset (docs/adr/0012-...).

const NEWLINE = 0x0a

/** Send ids become object-key segments: only these characters are accepted. */
export const SEND_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export function sendPrefix(sendId: string): string {
  return `${sendId}/`
}

// Beside the chunks, a send's folder holds what finishing it needs once its Redis state is lost (counts, offsets,
// ids and statuses, never row values): `<sendId>/finished.json` (the ingress's `finished` fields),
// `<sendId>/rejected/<topic>~<partition>~<first offset, 20 digits>-<writer>.json` (rows that can never be written:
// where each one is and its error code) and `<sendId>/closed.json` (the outcome, while the send's cleanup runs).
export function finishedKey(sendId: string): string {
  return `${sendId}/finished.json`
}

export function closedKey(sendId: string): string {
  return `${sendId}/closed.json`
}

export function rejectedKey(sendId: string, topic: string, partition: number, firstOffset: string, writer: string) {
  return `${sendId}/rejected/${topic}~${partition}~${firstOffset.padStart(20, '0')}-${writer}.json`
}

export type StagedObject = 'chunk' | 'finished' | 'rejected' | 'closed'

/** What a staged key of `sendId` holds; undefined for a key the runtime never writes. */
export function stagedObjectKind(sendId: string, key: string): StagedObject | undefined {
  if (key === finishedKey(sendId)) return 'finished'
  if (key === closedKey(sendId)) return 'closed'
  if (!key.startsWith(sendPrefix(sendId))) return undefined
  if (/^[^/]+\/rejected\/[^/]+~\d+~\d{20}-[^/]+\.json$/.test(key)) return 'rejected'
  return parseChunkKey(key) === undefined ? undefined : 'chunk'
}

export function chunkKey(
  sendId: string,
  topic: string,
  partition: number,
  firstOffset: string,
  writer: string,
): string {
  return `${sendId}/${topic}~${partition}/${firstOffset.padStart(20, '0')}-${writer}.rows`
}

export interface ChunkName {
  /** `<topic>~<partition>`: chunks of one source are merged together. */
  source: string
  firstOffset: bigint
  key: string
}

export function parseChunkKey(key: string): ChunkName | undefined {
  const match = /\/([^/]+~\d+)\/(\d{20})-[^/]+\.rows$/.exec(key)
  if (match === null) return undefined
  return { source: match[1]!, firstOffset: BigInt(match[2]!), key }
}

const INITIAL_CAPACITY = 16 * 1024

/**
 * Builds the body of a chunk; row frames are encoded into one growing buffer as the rows arrive (no string per
 * row is kept, and the body is that buffer: nothing is copied to write it). The buffer doubles up to `capacityHint`
 * (the chunk size it will be written at) and grows only by what a row needs beyond it.
 */
export class ChunkWriter {
  private buffer: Buffer
  private readonly capacityHint: number
  /** Encoded bytes so far (frames included). */
  bytes = 0
  rows = 0

  constructor(header: string, capacityHint = 2 * 1024 * 1024) {
    this.capacityHint = capacityHint
    this.buffer = Buffer.allocUnsafe(Math.min(INITIAL_CAPACITY, capacityHint))
    this.append('h', header)
  }

  /** Bytes held (the buffer's capacity, at least `bytes`). */
  get capacity(): number {
    return this.buffer.length
  }

  addRow(offset: string, line: string): void {
    this.append(offset, line)
    this.rows++
  }

  /** The chunk's bytes (a view of the writer's buffer: write it before adding more rows). */
  body(): Buffer {
    return this.buffer.subarray(0, this.bytes)
  }

  private append(tag: string, text: string): void {
    const length = Buffer.byteLength(text, 'utf8')
    const frame = `${tag} ${length}\n`
    const needed = this.bytes + frame.length + length
    if (needed > this.buffer.length) {
      const doubled = Math.min(this.buffer.length * 2, this.capacityHint)
      const grown = Buffer.allocUnsafe(Math.max(needed, doubled))
      this.buffer.copy(grown, 0, 0, this.bytes)
      this.buffer = grown
    }
    this.bytes += this.buffer.write(frame, this.bytes, 'latin1')
    this.bytes += this.buffer.write(text, this.bytes, length, 'utf8')
  }
}

export interface Frame {
  /** undefined for the header frame. */
  offset: bigint | undefined
  data: Buffer
}

/** Reads the frames of a chunk from its byte stream (a frame is held whole in memory, nothing more). */
export async function* readFrames(stream: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<Frame> {
  let pending: Buffer = Buffer.alloc(0)
  let need: { offset: bigint | undefined; length: number } | undefined
  for await (const piece of stream) {
    const chunk =
      typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    let at = 0
    for (;;) {
      if (need === undefined) {
        const end = pending.indexOf(NEWLINE, at)
        if (end < 0) break
        const line = pending.toString('latin1', at, end)
        const match = /^(h|\d+) (\d+)$/.exec(line)
        if (match === null) throw new Error('staged chunk is corrupt: bad frame header')
        need = { offset: match[1] === 'h' ? undefined : BigInt(match[1]!), length: Number(match[2]) }
        at = end + 1
      }
      if (pending.length - at < need.length) break
      yield { offset: need.offset, data: pending.subarray(at, at + need.length) }
      at += need.length
      need = undefined
    }
    pending = at === pending.length ? Buffer.alloc(0) : Buffer.from(pending.subarray(at))
  }
  if (need !== undefined || pending.length > 0) throw new Error('staged chunk is corrupt: truncated')
}
