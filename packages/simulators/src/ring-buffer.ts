// Keeps the most recent `capacity` entries so a 100,000-event benchmark cannot exhaust memory, while tests that
// make a handful of requests see every entry in arrival order.
export class RingBuffer<T> {
  readonly #items: (T | undefined)[] = []
  #capacity: number
  #start = 0
  #size = 0
  #evicted = 0

  constructor(capacity: number) {
    this.#capacity = Math.max(0, Math.floor(capacity))
  }

  get size(): number {
    return this.#size
  }

  get evicted(): number {
    return this.#evicted
  }

  push(item: T): void {
    if (this.#capacity === 0) {
      this.#evicted++
      return
    }
    if (this.#size < this.#capacity) {
      this.#items[(this.#start + this.#size) % this.#capacity] = item
      this.#size++
      return
    }
    this.#items[this.#start] = item
    this.#start = (this.#start + 1) % this.#capacity
    this.#evicted++
  }

  toArray(offset = 0, limit = Number.POSITIVE_INFINITY): T[] {
    const out: T[] = []
    const end = Math.min(this.#size, offset + limit)
    for (let i = Math.max(0, offset); i < end; i++) out.push(this.#items[(this.#start + i) % this.#capacity] as T)
    return out
  }

  clear(): void {
    this.#items.length = 0
    this.#start = 0
    this.#size = 0
    this.#evicted = 0
  }
}
