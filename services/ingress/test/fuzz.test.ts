import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { segmentIdentify } from '../src/actions/segment-identify.ts'
import { JsonDetailScanner, type JsonDetailItem } from '../src/looker/json-detail-reader.ts'
import {
  BROKEN_REASON,
  CANARY,
  expectedId,
  expectedTraits,
  isExact,
  look,
  numberText,
  renderLook,
} from './support/fuzz-looks.ts'

// Property-based: generated Looker results (big and exotic numbers, __proto__ names, pivots, sparse rows of wide
// Looks, invalid UTF-8, unquoted values, deep nesting), cut into chunks anywhere, through the reader and the
// segment_identify mapping. Every row arrives exactly or is rejected with its number and byte offset; no error
// quotes a row byte; nothing throws.

const context = { connection: 'default', form: {}, hiddenFields: new Set<string>() }

describe('fuzz', () => {
  it('the oracle agrees with the examples it is built on', () => {
    expect(['0.1', '1.50', '1e21', '123456789012345', '-0'].every(isExact)).toBe(true)
    expect(['9007199254740993', '1e400', '1e-400', '123456789012345678901234567890'].some(isExact)).toBe(false)
    fc.assert(fc.property(numberText, (text) => !Number.isNaN(Number(text))))
  })

  // FUZZ_RUNS raises the number of generated Looks for a longer search (e.g. FUZZ_RUNS=20000).
  it('every row arrives exactly, or is rejected by number and offset without its bytes', { timeout: 600_000 }, () => {
    fc.assert(
      fc.property(look, fc.array(fc.nat(), { maxLength: 6 }), (generated, cutAt) => {
        const { bytes, offsets } = renderLook(generated)
        const cuts = [...new Set(cutAt.map((n) => n % bytes.length))].sort((a, b) => a - b)
        const scanner = new JsonDetailScanner({ maxRowBytes: 256 * 1024 })
        const items: JsonDetailItem[] = []
        let from = 0
        for (const cut of [...cuts, bytes.length]) {
          items.push(...scanner.push(bytes.subarray(from, cut)))
          from = cut
        }
        items.push(...scanner.end())
        const [header, ...rows] = items
        if (header?.kind !== 'header') throw new Error('no header')
        const prepared = segmentIdentify.prepare(header.fields, context)
        if (!prepared.ok) throw new Error(prepared.reason)
        expect(rows).toHaveLength(generated.rows.length)
        generated.rows.forEach((row, index) => {
          const item = rows[index]!
          if (item.kind === 'header') throw new Error('a second header')
          expect(item.row).toBe(index + 1)
          if (row.broken !== undefined) {
            const reason = new RegExp(`^${escape(BROKEN_REASON[row.broken])}${offsets[index]}[,)]`)
            if (item.kind !== 'rejected') throw new Error(`row ${index + 1} was not rejected`)
            expect(item.reason).toMatch(reason)
            expect(JSON.stringify(item)).not.toContain(CANARY)
            return
          }
          if (item.kind !== 'row') throw new Error(`row ${index + 1}: ${JSON.stringify(item)}`)
          const result = prepared.mapRow(item.value)
          if (!result.ok) throw new Error(`row ${index + 1}: ${result.reason}`)
          const message = JSON.parse(JSON.stringify(result.messages[0])) as { userId: string; traits: unknown }
          expect(message.userId).toBe(expectedId(row.id!))
          expect(message.traits).toEqual(expectedTraits(generated, row))
        })
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 500) },
    )
  })
})

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
