import { describe, expect, it } from 'vitest'
import { BrazeProfileStore } from '../src/index.ts'

describe('braze profile store', () => {
  it('a braze_id pinned again takes the place of the profile that held it', () => {
    const store = new BrazeProfileStore({ maxArrayLength: 25, maxObjectArrayBytes: 100 * 1024 })
    const a = store.create({ kind: 'external_id', value: 'a' })
    const b = store.create({ kind: 'external_id', value: 'b' })
    const c = store.create({ kind: 'external_id', value: 'c' })
    const pinned = store.create({ kind: 'braze_id', value: b.braze_id })
    const listed = store.list()
    expect(listed).toHaveLength(3)
    expect([listed[0], listed[1], listed[2]].map((p) => [a, b, c, pinned].indexOf(p!))).toEqual([0, 3, 2])
    expect(store.size).toBe(3)
    expect(store.find({ kind: 'braze_id', value: b.braze_id })).toBe(pinned)
    store.clear()
    expect([store.size, store.find({ kind: 'braze_id', value: a.braze_id })]).toEqual([0, undefined])
  })
})
