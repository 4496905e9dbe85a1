// 64-bit row identity → 64-bit content fingerprint, in an open-addressing table (linear probing) of one Uint32Array,
// four words a slot, kept at most three quarters full: 21–43 bytes per row in memory (1,000,000 rows: 20.3 MiB).
// The capacity need not be a power of two: a slot is picked by scaling the identity's low word (fingerprints are
// uniform already) to the capacity. Identity 0 marks an empty slot and is remapped.

const MAX_LOAD = 0.75

export class FingerprintTable {
  #slots: Uint32Array
  #capacity: number
  #size = 0

  constructor(expected = 0) {
    this.#capacity = Math.max(1024, Math.ceil(expected / MAX_LOAD))
    this.#slots = new Uint32Array(this.#capacity * 4)
  }

  get size(): number {
    return this.#size
  }

  set(idHi: number, idLo: number, contentHi: number, contentLo: number): void {
    if (idHi === 0 && idLo === 0) idLo = 1
    if (this.#size + 1 > this.#capacity * MAX_LOAD) this.#grow()
    const slot = this.#find(idHi, idLo)
    const at = slot * 4
    if (this.#slots[at] === 0 && this.#slots[at + 1] === 0) this.#size++
    this.#slots[at] = idHi
    this.#slots[at + 1] = idLo
    this.#slots[at + 2] = contentHi
    this.#slots[at + 3] = contentLo
  }

  /** True when the identity is known with exactly this content fingerprint. */
  matches(idHi: number, idLo: number, contentHi: number, contentLo: number): boolean {
    if (idHi === 0 && idLo === 0) idLo = 1
    const at = this.#find(idHi, idLo) * 4
    return (
      this.#slots[at] === idHi &&
      this.#slots[at + 1] === idLo &&
      this.#slots[at + 2] === contentHi &&
      this.#slots[at + 3] === contentLo
    )
  }

  #find(idHi: number, idLo: number): number {
    const capacity = this.#capacity
    let slot = Math.floor(((Math.imul(idLo ^ idHi, 0x9e3779b1) >>> 0) * capacity) / 4294967296)
    for (;;) {
      const at = slot * 4
      const hi = this.#slots[at]!
      const lo = this.#slots[at + 1]!
      if ((hi === 0 && lo === 0) || (hi === idHi && lo === idLo)) return slot
      slot = slot + 1 === capacity ? 0 : slot + 1
    }
  }

  #grow(): void {
    const old = this.#slots
    this.#capacity *= 2
    this.#slots = new Uint32Array(this.#capacity * 4)
    this.#size = 0
    for (let at = 0; at < old.length; at += 4) {
      if (old[at] === 0 && old[at + 1] === 0) continue
      this.set(old[at]!, old[at + 1]!, old[at + 2]!, old[at + 3]!)
    }
  }
}
