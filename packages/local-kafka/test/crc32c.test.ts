import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { crc32c, crc32cTable } from '../src/protocol/crc32c.ts'

describe('CRC-32C', () => {
  it('matches the check value and the table fallback matches the native implementation', () => {
    expect(crc32cTable(Buffer.from('123456789'))).toBe(0xe3069283)
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283)
    for (const size of [0, 1, 61, 1000, 65_537]) {
      const buf = randomBytes(size)
      expect(crc32c(buf)).toBe(crc32cTable(buf))
    }
  })
})
