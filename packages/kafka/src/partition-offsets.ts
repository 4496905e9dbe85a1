/**
 * Offsets of one topic-partition between fetch and commit. Records are "taken" in offset order when a batch
 * is handed to the handler and "done" whenever the handler says so, in any order. The commit position is
 * the first taken offset not yet done, or the fetch position when everything taken is done, so a commit
 * never covers a record that was not handled.
 */
export class PartitionOffsets {
  #taken: bigint[] = []
  #head = 0
  #done = new Set<bigint>()
  #position: bigint | undefined

  /** The offset after the last record taken (where fetching continues), or undefined before the first batch. */
  get position(): bigint | undefined {
    return this.#position
  }

  /** Records taken and not yet done. */
  get pending(): number {
    return this.#taken.length - this.#head - this.#done.size
  }

  take(offset: bigint): void {
    if (this.#position !== undefined && offset < this.#position) {
      throw new RangeError(`offset ${offset} taken out of order (position ${this.#position})`)
    }
    this.#taken.push(offset)
    this.#position = offset + 1n
  }

  /** Moves the position past offsets that carried no record for us (control records, compaction gaps). */
  advanceTo(position: bigint): void {
    if (this.#position === undefined || position > this.#position) this.#position = position
  }

  /** Gives back taken records from `offset` on that are not done: they will be fetched again. */
  untakeFrom(offset: bigint): void {
    while (this.#taken.length > this.#head && this.#taken[this.#taken.length - 1]! >= offset) {
      this.#done.delete(this.#taken.pop()!)
    }
    if (this.#position === undefined || offset < this.#position) this.#position = offset
  }

  /** Returns false when the offset is not pending here (already done, never taken, or given back). */
  markDone(offset: bigint): boolean {
    if (this.#head < this.#taken.length && this.#taken[this.#head] === offset) {
      // The usual case, records finishing in order: the head is never in #done (it would have been advanced
      // past), so it advances without a search or a set entry.
      this.#head += 1
    } else {
      if (this.#done.has(offset) || !this.#isPending(offset)) return false
      this.#done.add(offset)
    }
    while (this.#done.size > 0 && this.#head < this.#taken.length && this.#done.delete(this.#taken[this.#head]!)) {
      this.#head += 1
    }
    if (this.#head > 1024 && this.#head * 2 > this.#taken.length) {
      this.#taken = this.#taken.slice(this.#head)
      this.#head = 0
    }
    return true
  }

  /** The offset to commit: every record before it is done. Undefined before anything was taken. */
  commitPosition(): bigint | undefined {
    if (this.#head < this.#taken.length) return this.#taken[this.#head]
    return this.#position
  }

  #isPending(offset: bigint): boolean {
    // Taken offsets are ascending, so a binary search finds it.
    let low = this.#head
    let high = this.#taken.length - 1
    while (low <= high) {
      const mid = (low + high) >>> 1
      const value = this.#taken[mid]!
      if (value === offset) return true
      if (value < offset) low = mid + 1
      else high = mid - 1
    }
    return false
  }
}
