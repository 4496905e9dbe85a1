import { describe, expect, it } from 'vitest'
import { parseUsers } from '../src/broker/sasl/mechanisms.ts'

describe('SASL users file', () => {
  it('reads name:password lines, skipping blanks and comments; the password may hold colons', () => {
    const users = parseUsers('# users\nalice:a:b:c\n\n  # more\nbob:pw\r\n', 'users.txt')
    expect([...users]).toEqual([
      ['alice', 'a:b:c'],
      ['bob', 'pw'],
    ])
  })

  it('names the line of a malformed entry without printing it', () => {
    expect(() => parseUsers('alice:ok\nsecret-without-colon\n', 'users.txt')).toThrow(
      /^users.txt line 2: expected name:password$/,
    )
    expect(() => parseUsers('alice:\n', 'users.txt')).toThrow(/^users.txt line 1: expected name:password$/)
  })

  it('refuses a user given twice', () => {
    expect(() => parseUsers('alice:one\nalice:two\n', 'users.txt')).toThrow(/line 2: user 'alice' is given twice/)
  })
})
