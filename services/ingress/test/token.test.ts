import { spawnSync } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { generateToken, isAuthorized, isValidToken, tokenFromHeader } from '../src/looker/token.ts'

const secret = 'test-secret-for-tokens'

// The reference hub's algorithm, written out independently of src/looker/token.ts.
function referenceToken(nonce: string, key = secret): string {
  return `${nonce}/${createHmac('sha512', key).update(nonce).digest('hex')}`
}

const header = (token: string) => `Token token="${token}"`

describe('Action Hub token', () => {
  it('accepts tokens made with the reference algorithm', () => {
    for (const nonce of ['abc', 'a'.repeat(64), '0123456789abcdef', 'nonce-with.dots_and-dashes']) {
      expect(isAuthorized(secret, header(referenceToken(nonce)))).toBe(true)
    }
  })

  it('accepts the lowercase "token" prefix the reference regex allows', () => {
    expect(isAuthorized(secret, `token token="${referenceToken('n1')}"`)).toBe(true)
  })

  it('accepts a token printed by generateToken', () => {
    const token = generateToken(secret)
    expect(token).toMatch(/^[0-9a-f]{64}\/[0-9a-f]{128}$/)
    expect(isAuthorized(secret, header(token))).toBe(true)
  })

  it('rejects a token signed with another secret', () => {
    expect(isAuthorized(secret, header(referenceToken('abc', 'other-secret')))).toBe(false)
  })

  it('rejects a wrong digest for the nonce', () => {
    const [, digest] = referenceToken('abc').split('/')
    expect(isAuthorized(secret, header(`abd/${digest}`))).toBe(false)
  })

  it('rejects truncated, over-long, non-hex and uppercase digests without throwing', () => {
    const token = referenceToken('abc')
    const digest = token.split('/')[1]!
    const cases = [
      token.slice(0, -1),
      token.slice(0, 10),
      `${token}0`,
      `${token}${'f'.repeat(10_000)}`,
      `abc/${digest.slice(0, -1)}z`,
      `abc/${digest.toUpperCase()}`,
      `abc/${digest}/extra`,
    ]
    for (const bad of cases) expect(isValidToken(secret, bad)).toBe(false)
    for (const bad of cases) expect(isAuthorized(secret, header(bad))).toBe(false)
  })

  it('rejects a missing nonce, a missing digest and an empty token', () => {
    const digest = referenceToken('abc').split('/')[1]!
    for (const bad of [`/${digest}`, 'abc/', 'abc', '', '/']) expect(isAuthorized(secret, header(bad))).toBe(false)
  })

  it('parses the header strictly', () => {
    const token = referenceToken('abc')
    expect(tokenFromHeader(header(token))).toBe(token)
    expect(tokenFromHeader(undefined)).toBeUndefined()
    expect(tokenFromHeader('')).toBeUndefined()
    expect(tokenFromHeader(`Bearer ${token}`)).toBeUndefined()
    expect(tokenFromHeader(`xToken token="${token}"`)).toBeUndefined()
    expect(tokenFromHeader(`Token token="${token}" trailing`)).toBeUndefined()
    expect(tokenFromHeader(`Token token="${token}"x"`)).toBeUndefined()
    expect(tokenFromHeader(`|oken token="${token}"`)).toBeUndefined()
    expect(tokenFromHeader(`Token token=${token}`)).toBeUndefined()
    expect(tokenFromHeader(`Token token="${'a'.repeat(5000)}"`)).toBeUndefined()
  })
})

describe('the token command (pnpm --filter @lookstream/ingress run token)', () => {
  const cli = fileURLToPath(new URL('../src/cli/generate-token.ts', import.meta.url))
  const run = (secretValue: string) =>
    spawnSync(process.execPath, ['--conditions=@lookstream/source', cli], {
      env: { PATH: process.env.PATH, ACTION_HUB_SECRET: secretValue },
      encoding: 'utf8',
    })

  it('prints a token the ingress accepts', () => {
    const out = run(secret)
    expect(out.status).toBe(0)
    expect(isAuthorized(secret, header(out.stdout.trim()))).toBe(true)
  })

  it('refuses a secret the ingress would not start with', () => {
    const out = run('short')
    expect(out.status).toBe(1)
    expect(out.stdout).toBe('')
    expect(out.stderr).toBe('ACTION_HUB_SECRET is shorter than 16 characters: the ingress would not start with it.\n')
  })
})
