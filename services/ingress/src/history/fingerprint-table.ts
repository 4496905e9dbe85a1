// 64-bit row identity → 64-bit content fingerprint, in an open-addressing table of one Uint32Array (four words a
// slot), kept at most half full: 32–64 bytes per row in memory. Identity 0 marks an empty slot and is remapped.

export class FingerprintTable {
  #slots: Uint32Array
  #mask: number
  #size = 0

  constructor(expected = 0) {
    let capacity = 1024
    while (capacity < expected * 2) capacity *= 2
    this.#slots = new Uint32Array(capacity * 4)
    this.#mask = capacity - 1
  }

  get size(): number {
    return this.#size
  }

  set(idHi: number, idLo: number, contentHi: number, contentLo: number): void {
    if (idHi === 0 && idLo === 0) idLo = 1
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#grow()
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
    let slot = (Math.imul(idLo ^ idHi, 0x9e3779b1) >>> 0) & this.#mask
    for (;;) {
      const at = slot * 4
      const hi = this.#slots[at]!
      const lo = this.#slots[at + 1]!
      if ((hi === 0 && lo === 0) || (hi === idHi && lo === idLo)) return slot
      slot = (slot + 1) & this.#mask
    }
  }

  #grow(): void {
    const old = this.#slots
    this.#slots = new Uint32Array(old.length * 2)
    this.#mask = this.#slots.length / 4 - 1
    this.#size = 0
    for (let at = 0; at < old.length; at += 4) {
      if (old[at] === 0 && old[at + 1] === 0) continue
      this.set(old[at]!, old[at + 1]!, old[at + 2]!, old[at + 3]!)
    }
  }
}
