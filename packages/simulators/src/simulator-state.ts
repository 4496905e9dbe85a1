import { preciseNow } from './precise-now.ts'
import { RingBuffer } from './ring-buffer.ts'

export interface BufferOptions {
  /** Item bodies kept per list (accepted, rejected, duplicates, skipped); counts and ids are always kept. */
  maxItems?: number
  /** Request-log entries kept. */
  maxRequests?: number
}

export interface AcceptedItem {
  seq: number
  requestId: number
  kind: string
  id: string | undefined
  /** Epoch ms (fractional) when the request carrying the item arrived. */
  receivedAt: number
  /** Epoch ms (fractional) when the simulator accepted the item. */
  acceptedAt: number
  item: unknown
}

export interface RejectedItem {
  seq: number
  requestId: number
  kind: string
  id: string | undefined
  /** Position in the request's array, when the item came in one. */
  index: number | undefined
  reason: string
  receivedAt: number
  item: unknown
}

export interface DuplicateItem {
  seq: number
  requestId: number
  kind: string
  id: string
  receivedAt: number
  firstAcceptedAt: number
  item: unknown
}

export interface RequestLogEntry {
  id: number
  method: string
  path: string
  status: number
  receivedAt: number
  respondedAt: number
  bytes: number
  items: number
  accepted: number
  rejected: number
  duplicates: number
  skipped: number
  /** The injected fault that shaped this response, if any. */
  fault: string | undefined
  /** Headers of interest (never credentials). */
  headers: Record<string, string>
}

export interface RequestRecord {
  id: number
  receivedAt: number
  items: number
  accepted: number
  rejected: number
  duplicates: number
  skipped: number
}

export interface SimulatorCounters {
  requests: number
  requestsByStatus: Record<string, number>
  bytesReceived: number
  itemsReceived: number
  accepted: number
  rejected: number
  duplicates: number
  skipped: number
  rateLimited: number
  faultsInjected: number
}

export interface ItemDetails {
  id?: string | undefined
  index?: number | undefined
  item?: unknown
}

function emptyCounters(): SimulatorCounters {
  return {
    requests: 0,
    requestsByStatus: {},
    bytesReceived: 0,
    itemsReceived: 0,
    accepted: 0,
    rejected: 0,
    duplicates: 0,
    skipped: 0,
    rateLimited: 0,
    faultsInjected: 0,
  }
}

export class SimulatorState {
  readonly accepted: RingBuffer<AcceptedItem>
  readonly rejected: RingBuffer<RejectedItem>
  readonly duplicates: RingBuffer<DuplicateItem>
  readonly skipped: RingBuffer<RejectedItem>
  readonly requests: RingBuffer<RequestLogEntry>
  /** Every accepted id with the time it was (last) accepted, in acceptance order; never trimmed. */
  readonly acceptedIds = new Map<string, number>()
  counters: SimulatorCounters = emptyCounters()
  #seq = 0
  #requestSeq = 0

  constructor(options: BufferOptions = {}) {
    const maxItems = options.maxItems ?? 10_000
    this.accepted = new RingBuffer(maxItems)
    this.rejected = new RingBuffer(maxItems)
    this.duplicates = new RingBuffer(maxItems)
    this.skipped = new RingBuffer(maxItems)
    this.requests = new RingBuffer(options.maxRequests ?? 10_000)
  }

  beginRequest(receivedAt: number, bytes: number): RequestRecord {
    this.counters.requests++
    this.counters.bytesReceived += bytes
    return { id: ++this.#requestSeq, receivedAt, items: 0, accepted: 0, rejected: 0, duplicates: 0, skipped: 0 }
  }

  received(request: RequestRecord, items: number): void {
    request.items += items
    this.counters.itemsReceived += items
  }

  accept(request: RequestRecord, kind: string, id: string | undefined, item: unknown): number {
    const acceptedAt = preciseNow()
    request.accepted++
    this.counters.accepted++
    if (id !== undefined) {
      // The map stays in acceptance order: a new id is appended by set(); an id accepted before is moved to the end
      // by deleting and re-inserting it (set() alone would update it in place). One lookup for a new id, the usual.
      const ids = this.acceptedIds
      const size = ids.size
      ids.set(id, acceptedAt)
      if (ids.size === size) {
        ids.delete(id)
        ids.set(id, acceptedAt)
      }
    }
    this.accepted.push({
      seq: ++this.#seq,
      requestId: request.id,
      kind,
      id,
      receivedAt: request.receivedAt,
      acceptedAt,
      item,
    })
    return acceptedAt
  }

  reject(request: RequestRecord, kind: string, reason: string, details: ItemDetails = {}): void {
    request.rejected++
    this.counters.rejected++
    this.rejected.push({
      seq: ++this.#seq,
      requestId: request.id,
      kind,
      id: details.id,
      index: details.index,
      reason,
      receivedAt: request.receivedAt,
      item: details.item,
    })
  }

  /** Items a real API drops without an error, e.g. Braze attributes for unknown users in update-only mode. */
  skip(request: RequestRecord, kind: string, reason: string, details: ItemDetails = {}): void {
    request.skipped++
    this.counters.skipped++
    this.skipped.push({
      seq: ++this.#seq,
      requestId: request.id,
      kind,
      id: details.id,
      index: details.index,
      reason,
      receivedAt: request.receivedAt,
      item: details.item,
    })
  }

  duplicate(request: RequestRecord, kind: string, id: string, firstAcceptedAt: number, item: unknown): void {
    request.duplicates++
    this.counters.duplicates++
    this.duplicates.push({
      seq: ++this.#seq,
      requestId: request.id,
      kind,
      id,
      receivedAt: request.receivedAt,
      firstAcceptedAt,
      item,
    })
  }

  endRequest(entry: RequestLogEntry): void {
    const key = String(entry.status)
    this.counters.requestsByStatus[key] = (this.counters.requestsByStatus[key] ?? 0) + 1
    if (entry.status === 429) this.counters.rateLimited++
    if (entry.fault !== undefined) this.counters.faultsInjected++
    this.requests.push(entry)
  }

  reset(): void {
    this.accepted.clear()
    this.rejected.clear()
    this.duplicates.clear()
    this.skipped.clear()
    this.requests.clear()
    this.acceptedIds.clear()
    this.counters = emptyCounters()
  }

  summary(): SimulatorCounters & { acceptedIds: number; buffered: Record<string, number> } {
    return {
      ...this.counters,
      acceptedIds: this.acceptedIds.size,
      buffered: {
        accepted: this.accepted.size,
        rejected: this.rejected.size,
        duplicates: this.duplicates.size,
        skipped: this.skipped.size,
        requests: this.requests.size,
      },
    }
  }
}
