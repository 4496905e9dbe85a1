import { createHash } from 'node:crypto'
import { allRowFailures, readFailureSummary, type HistoryKey } from '@lookstream/send-history'
import type { RedisClient as Redis } from '@lookstream/redis'
import { type MappedMessage } from '../actions/action.ts'
import { FingerprintTable } from './fingerprint-table.ts'
import type { HistoryStore } from './history-store.ts'

// "Changed rows only" for a scheduled plan. Per (action, connection, plan) Redis remembers, for each row
// accepted by the last complete run, a 64-bit fingerprint of its identity (the first message's userId,
// anonymousId, groupId) and one of its mapped content: 16 bytes per row, packed into binary strings of at most
// 65,536 rows (1 MiB), one generation at a time:
//   lookstream:changed:{<action>|<connection>|<plan>}:meta      hash: gen, chunks, rows, send_id
//   lookstream:changed:{<action>|<connection>|<plan>}:g<gen>:<i> 16 bytes × rows
// A run sends a row when its identity is new, its content changed, or it failed at the destination in the last
// run (dead-lettered or refused, read from that send's failed rows), and skips it otherwise. Only a run that
// finished commits a new generation; a failed run leaves the previous one in place. Rejected rows are never
// remembered, so they are tried again. Past `maxRows` rows are sent and not remembered.
// Memory: the previous generation is held in a FingerprintTable (21–43 bytes a row); the new one is written to Redis
// a chunk at a time as it fills, so the run holds one chunk of it (≤ 1 MiB) rather than 16 bytes per row. A run
// that does not commit removes the chunks it wrote. A dry run compares and counts but remembers nothing.

const ENTRY_BYTES = 16
const ROWS_PER_CHUNK = 65_536

export interface ChangedRowsScope {
  action: string
  connection: string
  planId: string
}

export interface ChangedRowsCounts {
  /** Rows left out because they are unchanged since the last run. */
  skipped: number
  /** Unchanged rows sent again because they failed at the destination in the last run. */
  resentAfterFailure: number
  /** Rows remembered by the previous run. */
  previousRows: number
  /** Rows past maxRows: sent, not remembered. */
  notRemembered: number
}

function tag(scope: ChangedRowsScope): string {
  const safe = (text: string) =>
    /^[A-Za-z0-9_.-]{1,64}$/.test(text) ? text : `h-${createHash('sha256').update(text).digest('hex').slice(0, 32)}`
  return `${safe(scope.action)}|${safe(scope.connection)}|${safe(scope.planId)}`
}

export const metaKey = (scope: ChangedRowsScope) => `lookstream:changed:{${tag(scope)}}:meta`
const chunkKey = (scope: ChangedRowsScope, gen: number, index: number) =>
  `lookstream:changed:{${tag(scope)}}:g${gen}:${index}`

function fingerprint(text: string): [number, number] {
  const digest = createHash('sha256').update(text).digest()
  return [digest.readUInt32BE(0), digest.readUInt32BE(4)]
}

function identityText(identity: { userId?: string; anonymousId?: string; groupId?: string }): string {
  return `${identity.userId ?? ''}\u0000${identity.anonymousId ?? ''}\u0000${identity.groupId ?? ''}`
}

export interface OpenOptions {
  redis: Redis
  scope: ChangedRowsScope
  /** 'all_remember' sends every row and starts the comparison again from this run. */
  mode: 'changed' | 'all_remember'
  /** Opens the last run's failed rows; without it, a last run with failures makes this run send every row. */
  historyKey: HistoryKey | undefined
  maxRows: number
  ttlSeconds: number
  /** false (a dry run): compare and count, write nothing. */
  remember?: boolean
}

export class ChangedRows {
  readonly counts: ChangedRowsCounts = { skipped: 0, resentAfterFailure: 0, previousRows: 0, notRemembered: 0 }
  /** Why every row is sent although only changed rows were asked for, if so. */
  sendingAllBecause: string | undefined
  readonly #previous: FingerprintTable
  readonly #failed: FingerprintTable
  readonly #pending = new Map<number, [number, number, number, number]>()
  /** The chunk of the new generation being filled; earlier chunks are in Redis (or on their way). */
  #chunk: Buffer
  #chunkRows = 0
  #chunksWritten = 0
  /** The chunk writes, one after another; rejects with the first failure. */
  #writes: Promise<void> = Promise.resolve()
  #nextRows = 0
  readonly #options: OpenOptions
  readonly #previousGen: number
  readonly #previousChunks: number

  private constructor(
    options: OpenOptions,
    previous: FingerprintTable,
    failed: FingerprintTable,
    gen: number,
    chunks: number,
  ) {
    this.#options = options
    this.#previous = previous
    this.#failed = failed
    this.#previousGen = gen
    this.#previousChunks = chunks
    this.#chunk = Buffer.allocUnsafe(Math.max(1, Math.min(options.maxRows, 4096)) * ENTRY_BYTES)
  }

  get #gen(): number {
    return this.#previousGen + 1
  }

  static async open(options: OpenOptions): Promise<ChangedRows> {
    const { redis, scope } = options
    const meta = await redis.hgetall(metaKey(scope))
    const gen = Number(meta.gen ?? 0)
    const chunks = Number(meta.chunks ?? 0)
    const previous = new FingerprintTable(Number(meta.rows ?? 0))
    const failed = new FingerprintTable()
    let reason: string | undefined
    if (options.mode === 'all_remember') reason = 'all rows were asked for'
    else if (meta.gen === undefined) reason = 'this is the first run remembered for this schedule'
    else {
      for (let index = 0; index < chunks && reason === undefined; index++) {
        const chunk = await redis.getBuffer(chunkKey(scope, gen, index))
        if (chunk === null || chunk.length % ENTRY_BYTES !== 0) {
          reason = 'the rows remembered from the last run could not be read (expired or damaged)'
          break
        }
        for (let at = 0; at < chunk.length; at += ENTRY_BYTES) {
          previous.set(
            chunk.readUInt32BE(at),
            chunk.readUInt32BE(at + 4),
            chunk.readUInt32BE(at + 8),
            chunk.readUInt32BE(at + 12),
          )
        }
      }
      if (reason === undefined && meta.send_id) reason = await loadFailures(options, meta.send_id, failed)
    }
    const changed = new ChangedRows(options, previous, failed, gen, chunks)
    changed.counts.previousRows = previous.size
    changed.sendingAllBecause = reason
    return changed
  }

  /** runSend's skipRow: true for a row to leave out. */
  skipRow(row: number, messages: readonly MappedMessage[]): boolean {
    const first = messages[0]!
    const [idHi, idLo] = fingerprint(identityText(first))
    const [cHi, cLo] = fingerprint(JSON.stringify(messages))
    const unchanged = this.sendingAllBecause === undefined && this.#previous.matches(idHi, idLo, cHi, cLo)
    const failedLastRun = this.#failed.size > 0 && this.#failed.matches(idHi, idLo, 1, 1)
    if (unchanged && !failedLastRun) {
      this.counts.skipped++
      this.#remember(idHi, idLo, cHi, cLo)
      return true
    }
    if (unchanged) this.counts.resentAfterFailure++
    this.#pending.set(row, [idHi, idLo, cHi, cLo])
    return false
  }

  onAccepted(row: number): void {
    const entry = this.#pending.get(row)
    if (entry === undefined) return
    this.#pending.delete(row)
    this.#remember(...entry)
  }

  onRejected(row: number): void {
    this.#pending.delete(row)
  }

  /** Writes this run's last rows, makes them the new generation and drops the previous one. */
  async commit(sendId: string): Promise<void> {
    const { redis, scope, ttlSeconds } = this.#options
    if (this.#chunkRows > 0) this.#writeChunk()
    await this.#writes
    const write = redis.pipeline()
    write.hset(metaKey(scope), {
      gen: this.#gen,
      chunks: this.#chunksWritten,
      rows: this.#nextRows,
      send_id: sendId,
      at: new Date().toISOString(),
    })
    write.expire(metaKey(scope), ttlSeconds)
    for (let index = 0; index < this.#previousChunks; index++) write.del(chunkKey(scope, this.#previousGen, index))
    const results = (await write.exec()) ?? []
    const failed = results.find(([err]) => err !== null)
    if (failed?.[0]) throw failed[0]
  }

  /** For a run that does not commit: removes the chunks it wrote (the previous generation stays). */
  async abandon(): Promise<void> {
    await this.#writes.catch(() => {})
    if (this.#chunksWritten === 0) return
    const { redis, scope } = this.#options
    const keys = Array.from({ length: this.#chunksWritten }, (_, index) => chunkKey(scope, this.#gen, index))
    await redis.del(...keys)
  }

  #remember(idHi: number, idLo: number, cHi: number, cLo: number): void {
    if (this.#nextRows >= this.#options.maxRows) {
      this.counts.notRemembered++
      return
    }
    this.#nextRows++
    if (this.#options.remember === false) return
    if ((this.#chunkRows + 1) * ENTRY_BYTES > this.#chunk.length) {
      const bigger = Buffer.allocUnsafe(Math.min(ROWS_PER_CHUNK, this.#chunkRows * 2) * ENTRY_BYTES)
      this.#chunk.copy(bigger, 0, 0, this.#chunkRows * ENTRY_BYTES)
      this.#chunk = bigger
    }
    const at = this.#chunkRows * ENTRY_BYTES
    this.#chunk.writeUInt32BE(idHi, at)
    this.#chunk.writeUInt32BE(idLo, at + 4)
    this.#chunk.writeUInt32BE(cHi, at + 8)
    this.#chunk.writeUInt32BE(cLo, at + 12)
    this.#chunkRows++
    if (this.#chunkRows === ROWS_PER_CHUNK) this.#writeChunk()
  }

  /** Sends the filled chunk to Redis (after the ones before it) and starts the next one. */
  #writeChunk(): void {
    const { redis, scope, ttlSeconds } = this.#options
    const key = chunkKey(scope, this.#gen, this.#chunksWritten++)
    const data = this.#chunk.subarray(0, this.#chunkRows * ENTRY_BYTES)
    this.#chunk = Buffer.allocUnsafe(ROWS_PER_CHUNK * ENTRY_BYTES)
    this.#chunkRows = 0
    this.#writes = this.#writes.then(async () => {
      await redis.set(key, data, 'EX', ttlSeconds)
    })
    // Seen by commit (which awaits it) or abandon; never an unhandled rejection meanwhile.
    this.#writes.catch(() => {})
  }
}

/** Marks the identities of the last run's rows that failed at the destination; a reason to send all, if any. */
async function loadFailures(
  options: OpenOptions,
  sendId: string,
  failed: FingerprintTable,
): Promise<string | undefined> {
  const summary = await readFailureSummary(options.redis, sendId)
  const atDestination = summary.total - (summary.byStage.rejected ?? 0)
  if (atDestination === 0) return undefined
  if (options.historyKey === undefined) {
    return 'the last run had rows that failed at the destination and SEND_HISTORY_SECRET is not set to read them'
  }
  if (summary.stored < summary.total) {
    return `the last run had more failed rows (${summary.total}) than the send history keeps (${summary.stored})`
  }
  for await (const batch of allRowFailures(options.redis, sendId, options.historyKey)) {
    for (const failure of batch) {
      if (failure.stage === 'rejected') continue
      if (failure.identity === undefined) {
        return 'a row that failed at the destination in the last run cannot be identified'
      }
      const [idHi, idLo] = fingerprint(identityText(failure.identity))
      failed.set(idHi, idLo, 1, 1)
    }
  }
  return undefined
}

/** Opens the remembered rows for a send that asked for changed rows only, or says why it cannot run. */
export async function openChangedRows(
  history: Pick<HistoryStore, 'changedRows'> | undefined,
  scope: { action: string; connection: string; planId: string | undefined },
  mode: 'all' | 'changed' | 'all_remember',
  remember: boolean,
): Promise<{ changed?: ChangedRows; failure?: string }> {
  if (mode === 'all') return {}
  if (scope.planId === undefined) {
    return {
      failure:
        'Only new or changed rows compares a schedule with its last run, and this send has no scheduled plan id; no row was sent',
    }
  }
  if (history === undefined) {
    return { failure: 'Only new or changed rows needs the send history (SEND_HISTORY_SECRET); no row was sent' }
  }
  return {
    changed: await history.changedRows(
      { action: scope.action, connection: scope.connection, planId: scope.planId },
      mode,
      remember,
    ),
  }
}

/** The verdict's sentence on skipped rows. */
export function describeChangedRows(changed: ChangedRows, remembered: boolean): string {
  const memory = remembered
    ? ''
    : ' The rows were not remembered (the send did not finish, or was a dry run); the next run compares with the last finished one.'
  if (changed.sendingAllBecause !== undefined) {
    return `Every row was sent: ${changed.sendingAllBecause}.${memory}`
  }
  const resent =
    changed.counts.resentAfterFailure === 0
      ? ''
      : `; ${changed.counts.resentAfterFailure} unchanged rows were sent again because they failed last time`
  return `${changed.counts.skipped} unchanged rows skipped (only new or changed rows since the schedule's last run${resent}).${memory}`
}
