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

  it("a profile's first alias gives it a list of its own; profiles without one stay without", () => {
    const store = new BrazeProfileStore({ maxArrayLength: 25, maxObjectArrayBytes: 100 * 1024 })
    const plain = store.create({ kind: 'external_id', value: 'plain' })
    const other = store.create({ kind: 'external_id', value: 'other' })
    const [aliased] = store.seed([{ external_id: 'aliased', user_alias: { alias_name: 'n1', alias_label: 'l' } }])
    store.seed([{ external_id: 'aliased', user_alias: { alias_name: 'n2', alias_label: 'l' } }])
    const byAlias = store.create({ kind: 'user_alias', name: 'n3', label: 'l' })
    expect(aliased!.user_aliases).toEqual([
      { alias_name: 'n1', alias_label: 'l' },
      { alias_name: 'n2', alias_label: 'l' },
    ])
    expect(byAlias.user_aliases).toEqual([{ alias_name: 'n3', alias_label: 'l' }])
    expect([plain.user_aliases, other.user_aliases]).toEqual([[], []])
    expect(store.find({ kind: 'user_alias', name: 'n2', label: 'l' })).toBe(aliased)
    expect((JSON.parse(JSON.stringify(store.list())) as { user_aliases: unknown }[])[0]!.user_aliases).toEqual([])
  })

  it('list attributes of different profiles stay apart when their values are shared', () => {
    const store = new BrazeProfileStore({ maxArrayLength: 2, maxObjectArrayBytes: 100 * 1024 })
    const a = store.create({ kind: 'external_id', value: 'a' })
    const b = store.create({ kind: 'external_id', value: 'b' })
    for (const profile of [a, b]) store.applyAttributes(profile, { looker_export: { add: ['LABEL'] } })
    expect(a.attributes.looker_export).not.toBe(b.attributes.looker_export)
    store.applyAttributes(a, { looker_export: { add: ['SECOND', 'THIRD'] } })
    store.applyAttributes(b, { looker_export: { remove: ['LABEL'], add: ['LABEL'] } })
    // At the cap of 2 the oldest value goes; re-adding moves a value to the end.
    expect([a.attributes.looker_export, b.attributes.looker_export]).toEqual([['SECOND', 'THIRD'], ['LABEL']])
    store.applyAttributes(b, { looker_export: { remove: ['LABEL'] } })
    expect([a.attributes.looker_export, b.attributes.looker_export]).toEqual([['SECOND', 'THIRD'], []])
  })
})
