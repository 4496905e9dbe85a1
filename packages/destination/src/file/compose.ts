import { Readable } from 'node:stream'
import type { FileSink } from '../destination.ts'
import { parseChunkKey, readFrames, sendPrefix, type ChunkName } from './staged-chunk.ts'

/** The staged rows of a send fell short of (or exceeded) the rows the ingress accepted. */
export class RowCountMismatch extends Error {
  readonly rows: number
  readonly accepted: number

  constructor(rows: number, accepted: number) {
    super(`staged ${rows} distinct rows, the ingress accepted ${accepted}`)
    this.rows = rows
    this.accepted = accepted
  }
}

/** A staged chunk whose header differs from the send's first one: the send cannot become one file. */
export class HeaderMismatch extends Error {}

export async function listChunks(sink: FileSink, sendId: string): Promise<ChunkName[]> {
  const chunks: ChunkName[] = []
  for await (const key of sink.listStaged(sendPrefix(sendId))) {
    const name = parseChunkKey(key)
    if (name !== undefined) chunks.push(name)
  }
  // Sources in a stable order; within one, by first offset (a re-written chunk after its original).
  return chunks.sort((a, b) =>
    a.source === b.source
      ? a.firstOffset < b.firstOffset
        ? -1
        : a.firstOffset > b.firstOffset
          ? 1
          : 0
      : a.source < b.source
        ? -1
        : 1,
  )
}

const FLUSH_BYTES = 256 * 1024

/** How composeBody reads a chunk again when reading it failed (S3 answered an error, or the body broke off). */
export interface ChunkReadRetry {
  /** Reads of one chunk, the first included, before its failure ends the body (1: none again). */
  attempts: number
  /** Waits before read `attempt + 1` of a chunk; rejects to end the body (e.g. on shutdown). */
  wait(attempt: number, err: unknown): Promise<void>
}

const NO_RETRY: ChunkReadRetry = { attempts: 1, wait: () => Promise.resolve() }

/**
 * The file's bytes: the header once, then every staged row exactly once, source by source in offset order. Chunks
 * of one source may overlap (a chunk written again after a crash): a row is taken only when its offset is above
 * the last one taken from that source. Ends with RowCountMismatch when the rows are not exactly `accepted`, so a
 * publish fed by it never completes with a partial file. Holds one frame and one output buffer at a time.
 * A chunk whose read fails is read again from its start (`retry`): the rows already taken are skipped by offset,
 * so a body that broke off half-way resumes after its last complete row.
 */
export function composeBody(
  sink: FileSink,
  chunks: readonly ChunkName[],
  accepted: number,
  retry: ChunkReadRetry = NO_RETRY,
): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    let header: Buffer | undefined
    let rows = 0
    let out: Buffer[] = []
    let outBytes = 0
    let source: string | undefined
    let last = -1n
    for (const chunk of chunks) {
      if (chunk.source !== source) {
        source = chunk.source
        last = -1n
      }
      for (let attempt = 1; ; attempt++) {
        try {
          const stream = (await sink.readStaged(chunk.key)) as AsyncIterable<Buffer>
          for await (const frame of readFrames(stream)) {
            if (frame.offset === undefined) {
              if (header === undefined) {
                header = Buffer.from(frame.data)
                out.push(header)
                outBytes += header.length
              } else if (!header.equals(frame.data)) {
                throw new HeaderMismatch('rows of the send have different columns')
              }
              continue
            }
            if (frame.offset <= last) continue
            last = frame.offset
            rows++
            if (rows > accepted) throw new RowCountMismatch(rows, accepted)
            out.push(Buffer.from(frame.data))
            outBytes += frame.data.length
            if (outBytes >= FLUSH_BYTES) {
              yield Buffer.concat(out, outBytes)
              out = []
              outBytes = 0
            }
          }
          break
        } catch (err) {
          // What the rows say is final; a failed read may go better the next time.
          if (err instanceof HeaderMismatch || err instanceof RowCountMismatch || attempt >= retry.attempts) throw err
          await retry.wait(attempt, err)
        }
      }
    }
    if (rows !== accepted) throw new RowCountMismatch(rows, accepted)
    if (outBytes > 0) yield Buffer.concat(out, outBytes)
  }
  return Readable.from(generate(), { objectMode: false, highWaterMark: FLUSH_BYTES })
}
