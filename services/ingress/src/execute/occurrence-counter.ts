// Counts how often each (identity, content) pair occurred earlier in a send, so identical rows get
// distinct but deterministic message ids (occurrence 0, 1, 2, … in document order).
//
// Memory: a 64-bit fingerprint per DISTINCT row in an open-addressing table of two Uint32Arrays, kept at
// most half full (16–32 bytes per distinct row), plus a Map entry only for fingerprints seen more than once. Trade-off: two different rows whose fingerprints collide (chance
// about n²/2⁶⁵, ~3·10⁻⁸ for a million rows) are counted as one; the second then gets occurrence 1 — still a
// unique id, and the same one on every re-delivery, because the count depends only on the document order.
// Fingerprint 0 is reserved for empty slots and remapped.
//
// Bounded memory: the exact table stops growing at `maxDistinct` rows (default 250,000: a 4 MiB table,
// 6 MiB while it last doubled). Beyond that, a fixed 8 MiB Bloom filter, allocated only then, tells first
// sightings (occurrence 0, as before: order-independent) from possible repeats. A possible repeat (a true one,
// or a false positive: ~1 row in 10^8 at 1M rows, ~4% at 10M) gets REPEAT_BEYOND_TRACKING + its row number:
// still unique and still the same on a re-delivery in the same row order, but no longer independent of the
// order. So a send needs at most ~12 MiB here whatever its size (the ingress's memory target is a peak under
// 200 MB, flat from 100k to 1M rows), and no two rows ever share a messageId.

const INITIAL_CAPACITY = 1 << 12

/** Occurrences at or above this encode the row number of a repeat seen after the exact table was full. */
export const REPEAT_BEYOND_TRACKING = 2 ** 32

export const DEFAULT_MAX_DISTINCT = 250_000

const BLOOM_BITS = 2 ** 26
const BLOOM_HASHES = 7

export class OccurrenceCounter {
  #hi = new Uint32Array(INITIAL_CAPACITY)
  #lo = new Uint32Array(INITIAL_CAPACITY)
  #size = 0
  readonly #repeats = new Map<string, number>()
  readonly #maxDistinct: number
  readonly #bloomBits: number
  #bloom: Uint8Array | undefined

  constructor(options: { maxDistinct?: number; bloomBits?: number } = {}) {
    this.#maxDistinct = options.maxDistinct ?? DEFAULT_MAX_DISTINCT
    this.#bloomBits = options.bloomBits ?? BLOOM_BITS
  }

  get distinct(): number {
    return this.#size
  }

  /**
   * Returns how many times this fingerprint was seen before (or, once the exact table is full, 0 for a first
   * sighting and REPEAT_BEYOND_TRACKING + row for a possible repeat), and records this sighting.
   */
  next(hi: number, lo: number, row = 0): number {
    hi >>>= 0
    lo >>>= 0
    if (hi === 0 && lo === 0) lo = 1
    if (this.#find(hi, lo)) {
      const key = `${hi}:${lo}`
      const seen = (this.#repeats.get(key) ?? 0) + 1
      this.#repeats.set(key, seen)
      return seen
    }
    if (this.#size < this.#maxDistinct) {
      this.#insert(hi, lo)
      if (this.#size * 2 > this.#hi.length) this.#grow()
      return 0
    }
    return this.#bloomAdd(hi, lo) ? 0 : REPEAT_BEYOND_TRACKING + row
  }

  #find(hi: number, lo: number): boolean {
    const mask = this.#hi.length - 1
    let slot = (lo ^ Math.imul(hi, 0x9e3779b1)) & mask
    for (;;) {
      const h = this.#hi[slot]!
      const l = this.#lo[slot]!
      if (h === 0 && l === 0) return false
      if (h === hi && l === lo) return true
      slot = (slot + 1) & mask
    }
  }

  /** Adds to the Bloom filter; true when the fingerprint was certainly not in it before. */
  #bloomAdd(hi: number, lo: number): boolean {
    const bits = (this.#bloom ??= new Uint8Array(this.#bloomBits / 8))
    // Double hashing over the two independent halves of a SHA-1-derived fingerprint.
    const step = (hi | 1) >>> 0
    let absent = false
    for (let i = 0; i < BLOOM_HASHES; i++) {
      const bit = (lo + i * step) % this.#bloomBits
      const mask = 1 << (bit & 7)
      if ((bits[bit >>> 3]! & mask) === 0) {
        absent = true
        bits[bit >>> 3]! |= mask
      }
    }
    return absent
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
