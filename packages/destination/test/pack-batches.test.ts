import { describe, expect, it } from 'vitest'
import { batchBytes, bisect, packBatches } from '../src/pack-batches.ts'

const item = (id: number, bytes: number) => ({ item: id, json: 'x'.repeat(bytes), bytes })

describe('packBatches', () => {
  it('cuts batches at the item count', () => {
    const items = Array.from({ length: 7 }, (_, i) => item(i, 10))
    const batches = packBatches(items, { maxBatchItems: 3, maxBatchBytes: 10_000 })
    expect(batches.map((b) => b.map((i) => i.item))).toEqual([[0, 1, 2], [3, 4, 5], [6]])
  })

  it('cuts batches at the byte limit counting separators, never exceeding it', () => {
    // 3 items of 100 bytes + 2 commas = 302 > 301: only two fit.
    const items = Array.from({ length: 5 }, (_, i) => item(i, 100))
    const batches = packBatches(items, { maxBatchItems: 100, maxBatchBytes: 301 })
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1])
    for (const batch of batches) expect(batchBytes(batch)).toBeLessThanOrEqual(301)
    expect(packBatches(items, { maxBatchItems: 100, maxBatchBytes: 302 }).map((b) => b.length)).toEqual([3, 2])
  })

  it('keeps order and loses nothing with mixed sizes', () => {
    const items = Array.from({ length: 200 }, (_, i) => item(i, 1 + ((i * 37) % 300)))
    const batches = packBatches(items, { maxBatchItems: 17, maxBatchBytes: 1500 })
    expect(batches.flat().map((i) => i.item)).toEqual(items.map((i) => i.item))
    for (const batch of batches) {
      expect(batch.length).toBeLessThanOrEqual(17)
      expect(batchBytes(batch)).toBeLessThanOrEqual(1500)
    }
  })

  it('puts an item larger than the byte limit in a batch of its own', () => {
    const batches = packBatches([item(0, 10), item(1, 500), item(2, 10)], { maxBatchItems: 10, maxBatchBytes: 100 })
    expect(batches.map((b) => b.map((i) => i.item))).toEqual([[0], [1], [2]])
  })
})

describe('bisect', () => {
  it('halves a batch, the larger half first', () => {
    expect(bisect([1, 2, 3, 4, 5])).toEqual([
      [1, 2, 3],
      [4, 5],
    ])
    expect(bisect([1, 2])).toEqual([[1], [2]])
  })
})
