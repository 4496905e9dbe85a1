// Counts how often each (identity, content) pair occurred earlier in a send, so identical rows get
// distinct but deterministic message ids (occurrence 0, 1, 2, … in document order).
//
// Memory: a 64-bit fingerprint per DISTINCT row in an open-addressing table of two Uint32Arrays, kept at
// most half full (16–32 bytes per distinct row: ~32 MB for a million distinct rows), plus a Map entry only
// for fingerprints seen more than once. Trade-off: two different rows whose fingerprints collide (chance
// about n²/2⁶⁵, ~3·10⁻⁸ for a million rows) are counted as one; the second then gets occurrence 1 — still a
// unique id, and the same one on every re-delivery, because the count depends only on the document order.
// Fingerprint 0 is reserved for empty slots and remapped.

const INITIAL_CAPACITY = 1 << 12

export class OccurrenceCounter {
  #hi = new Uint32Array(INITIAL_CAPACITY)
  #lo = new Uint32Array(INITIAL_CAPACITY)
  #size = 0
  readonly #repeats = new Map<string, number>()

  get distinct(): number {
    return this.#size
  }

  /** Returns how many times this fingerprint was seen before, and records this sighting. */
  next(hi: number, lo: number): number {
    hi >>>= 0
    lo >>>= 0
    if (hi === 0 && lo === 0) lo = 1
    if (!this.#insert(hi, lo)) {
      const key = `${hi}:${lo}`
      const seen = (this.#repeats.get(key) ?? 0) + 1
      this.#repeats.set(key, seen)
      return seen
    }
    if (this.#size * 2 > this.#hi.length) this.#grow()
    return 0
  }

  /** Inserts; false when already present. */
  #insert(hi: number, lo: number): boolean {
    const mask = this.#hi.length - 1
    let slot = (lo ^ Math.imul(hi, 0x9e3779b1)) & mask
    for (;;) {
      const h = this.#hi[slot]!
      const l = this.#lo[slot]!
      if (h === 0 && l === 0) {
        this.#hi[slot] = hi
        this.#lo[slot] = lo
        this.#size++
        return true
      }
      if (h === hi && l === lo) return false
      slot = (slot + 1) & mask
    }
  }

  #grow(): void {
    const oldHi = this.#hi
    const oldLo = this.#lo
    this.#hi = new Uint32Array(oldHi.length * 2)
    this.#lo = new Uint32Array(oldLo.length * 2)
    this.#size = 0
    for (let i = 0; i < oldHi.length; i++) {
      if (oldHi[i] !== 0 || oldLo[i] !== 0) this.#insert(oldHi[i]!, oldLo[i]!)
    }
  }
}

/** The 64-bit fingerprint of a UUID string (its first 16 hex digits). */
export function fingerprintOf(uuid: string): [number, number] {
  return [Number.parseInt(uuid.slice(0, 8), 16), Number.parseInt(uuid.slice(9, 13) + uuid.slice(14, 18), 16)]
}
