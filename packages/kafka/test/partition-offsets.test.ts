import { describe, expect, it } from 'vitest'
import { PartitionOffsets } from '../src/index.ts'

function takeAll(state: PartitionOffsets, offsets: number[]): void {
  for (const offset of offsets) state.take(BigInt(offset))
}

describe('PartitionOffsets', () => {
  it('has no commit position before anything is taken', () => {
    expect(new PartitionOffsets().commitPosition()).toBeUndefined()
  })

  it('commits up to the first record not yet done', () => {
    const state = new PartitionOffsets()
    takeAll(state, [10, 11, 12, 13])
    expect(state.commitPosition()).toBe(10n)
    state.markDone(10n)
    state.markDone(11n)
    expect(state.commitPosition()).toBe(12n)
    expect(state.pending).toBe(2)
  })

  it('does not commit past a gap when later records are done first', () => {
    const state = new PartitionOffsets()
    takeAll(state, [0, 1, 2, 3])
    state.markDone(0n)
    state.markDone(2n)
    state.markDone(3n)
    expect(state.commitPosition()).toBe(1n)
    state.markDone(1n)
    expect(state.commitPosition()).toBe(4n)
    expect(state.pending).toBe(0)
  })

  it('skips offsets that carried no record (compaction, control records) once all is done', () => {
    const state = new PartitionOffsets()
    takeAll(state, [0, 5, 9])
    state.advanceTo(12n)
    for (const offset of [0n, 5n, 9n]) state.markDone(offset)
    expect(state.commitPosition()).toBe(12n)
  })

  it('ignores marks for unknown, repeated or given-back offsets', () => {
    const state = new PartitionOffsets()
    takeAll(state, [0, 1, 2])
    expect(state.markDone(7n)).toBe(false)
    expect(state.markDone(0n)).toBe(true)
    expect(state.markDone(0n)).toBe(false)
    state.untakeFrom(1n)
    expect(state.markDone(2n)).toBe(false)
    expect(state.position).toBe(1n)
    expect(state.commitPosition()).toBe(1n)
  })

  it('keeps a record that was done before being given back as done', () => {
    const state = new PartitionOffsets()
    takeAll(state, [0, 1, 2])
    state.markDone(1n)
    state.untakeFrom(2n)
    state.markDone(0n)
    expect(state.commitPosition()).toBe(2n)
  })

  it('rejects taking an offset behind the position', () => {
    const state = new PartitionOffsets()
    takeAll(state, [5])
    expect(() => state.take(3n)).toThrow(RangeError)
  })

  it('stays correct over many records (compaction of its internal list)', () => {
    const state = new PartitionOffsets()
    for (let offset = 0; offset < 5000; offset += 1) state.take(BigInt(offset))
    for (let offset = 0; offset < 4999; offset += 1) state.markDone(BigInt(offset))
    expect(state.commitPosition()).toBe(4999n)
    expect(state.pending).toBe(1)
    state.markDone(4999n)
    expect(state.commitPosition()).toBe(5000n)
  })
})
