import type { BatchLimits, EncodedItem } from './destination.ts'

/** Bytes a batch of these items occupies: their encodings plus one separator between each two. */
export function batchBytes(items: readonly { bytes: number }[]): number {
  let total = 0
  for (const item of items) total += item.bytes
  return total + Math.max(0, items.length - 1)
}

/**
 * Greedy, order-preserving packing into batches within the count and byte limits. Items over
 * maxItemBytes must have been dead-lettered before; one that still exceeds maxBatchBytes goes alone.
 */
export function packBatches<Item>(
  items: readonly EncodedItem<Item>[],
  limits: Pick<BatchLimits, 'maxBatchItems' | 'maxBatchBytes'>,
): EncodedItem<Item>[][] {
  const batches: EncodedItem<Item>[][] = []
  let current: EncodedItem<Item>[] = []
  let bytes = 0
  for (const item of items) {
    const added = current.length === 0 ? item.bytes : bytes + 1 + item.bytes
    if (current.length > 0 && (current.length >= limits.maxBatchItems || added > limits.maxBatchBytes)) {
      batches.push(current)
      current = [item]
      bytes = item.bytes
    } else {
      current.push(item)
      bytes = added
    }
  }
  if (current.length > 0) batches.push(current)
  return batches
}

/** Halves of a batch the API rejected as a whole, so that only the bad items end up failing. */
export function bisect<T>(items: readonly T[]): [T[], T[]] {
  const middle = Math.ceil(items.length / 2)
  return [items.slice(0, middle), items.slice(middle)]
}
