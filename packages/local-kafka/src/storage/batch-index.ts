// In-memory columns with one entry per stored batch. timestamps hold the running maximum, as Kafka's time
// index does, so "first offset with timestamp >= T" is a binary search.
export class BatchIndex {
  count = 0
  baseOffsets = new Float64Array(64)
  lastOffsets = new Float64Array(64)
  positions = new Float64Array(64)
  sizes = new Int32Array(64)
  timestamps = new Float64Array(64)

  push(baseOffset: number, lastOffset: number, position: number, size: number, maxTimestamp: number): void {
    if (this.count === this.baseOffsets.length) this.grow()
    const i = this.count++
    this.baseOffsets[i] = baseOffset
    this.lastOffsets[i] = lastOffset
    this.positions[i] = position
    this.sizes[i] = size
    const prev = i > 0 ? this.timestamps[i - 1]! : -Infinity
    this.timestamps[i] = Math.max(prev, maxTimestamp)
  }

  private grow(): void {
    const n = this.baseOffsets.length * 2
    const g = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(n)
      b.set(a)
      return b
    }
    this.baseOffsets = g(this.baseOffsets, (k) => new Float64Array(k))
    this.lastOffsets = g(this.lastOffsets, (k) => new Float64Array(k))
    this.positions = g(this.positions, (k) => new Float64Array(k))
    this.sizes = g(this.sizes, (k) => new Int32Array(k))
    this.timestamps = g(this.timestamps, (k) => new Float64Array(k))
  }

  // First batch whose last offset is >= offset (count if none).
  findOffset(offset: number): number {
    let lo = 0
    let hi = this.count
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.lastOffsets[mid]! < offset) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  // First batch whose running max timestamp is >= ts (count if none).
  findTimestamp(ts: number): number {
    let lo = 0
    let hi = this.count
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.timestamps[mid]! < ts) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  get largestTimestamp(): number {
    return this.count === 0 ? -1 : this.timestamps[this.count - 1]!
  }
}
