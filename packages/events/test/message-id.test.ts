import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  MESSAGE_ID_NAMESPACE,
  NAMESPACE_URL,
  canonicalJson,
  contentHash,
  messageIdFor,
  messageIdHasher,
  uuidV5,
} from '../src/index.ts'

// An independent UUIDv5 written from RFC 9562 §5.5 with string/bit operations, to cross-check uuidV5.
function referenceUuidV5(name: string, namespace: string): string {
  const nsBytes = Buffer.from(namespace.replace(/-/g, ''), 'hex')
  const digest = createHash('sha1')
    .update(Buffer.concat([nsBytes, Buffer.from(name)]))
    .digest('hex')
    .slice(0, 32)
  const chars = digest.split('')
  chars[12] = '5'
  chars[16] = ((parseInt(chars[16]!, 16) & 0x3) | 0x8).toString(16)
  const hex = chars.join('')
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20, 32)].join('-')
}

const NAMESPACE_DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8'
const V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const parts = {
  destination: 'braze',
  connection: 'default',
  sendKey: 'plan:17',
  ranAt: '2026-06-01T06:00:00Z',
  identity: 'cust_123',
  content: { email: 'a@example.com', plan: 'annual', ltv: 150 },
  occurrence: 0,
}

describe('uuidV5', () => {
  it('matches the RFC 9562 appendix example (DNS namespace, www.example.com)', () => {
    expect(uuidV5('www.example.com', NAMESPACE_DNS)).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2')
  })

  it('agrees with an independent implementation', () => {
    for (const name of ['', 'a', 'lookstream', 'ünïcödé', 'x'.repeat(1000)]) {
      expect(uuidV5(name, NAMESPACE_URL)).toBe(referenceUuidV5(name, NAMESPACE_URL))
    }
  })

  it('derives the lookstream namespace as documented', () => {
    expect(uuidV5('urn:lookstream:message-id', NAMESPACE_URL)).toBe(MESSAGE_ID_NAMESPACE)
  })

  it('rejects a namespace that is not a UUID', () => {
    expect(() => uuidV5('x', 'not-a-uuid')).toThrow(/namespace is not a UUID/)
  })
})

describe('messageIdFor', () => {
  it('is a version 5, RFC 9562 variant UUID under 100 characters', () => {
    const id = messageIdFor(parts)
    expect(id).toMatch(V5)
    expect(id.length).toBeLessThan(100)
  })

  it('is deterministic and ignores the key order of the content', () => {
    const reordered = { ...parts, content: { plan: 'annual', ltv: 150, email: 'a@example.com' } }
    expect(messageIdFor(parts)).toBe(messageIdFor({ ...parts }))
    expect(messageIdFor(reordered)).toBe(messageIdFor(parts))
  })

  it('is a known value (pins the name encoding: changing it would re-deliver every replayed send)', () => {
    const name = [
      'lookstream.message-id.v1',
      'braze',
      'default',
      'plan:17',
      '2026-06-01T06:00:00Z',
      'cust_123',
      '{"email":"a@example.com","ltv":150,"plan":"annual"}',
      '0',
    ]
      .map((part) => `${Buffer.byteLength(part)}:${part}`)
      .join('')
    expect(messageIdFor(parts)).toBe(referenceUuidV5(name, MESSAGE_ID_NAMESPACE))
  })

  it.each([
    ['destination', { destination: 'segment' }],
    ['connection', { connection: 'eu' }],
    ['sendKey', { sendKey: 'plan:18' }],
    ['ranAt', { ranAt: '2026-06-02T06:00:00Z' }],
    ['identity', { identity: 'cust_124' }],
    ['content', { content: { email: 'a@example.com', plan: 'monthly', ltv: 150 } }],
    ['occurrence', { occurrence: 1 }],
  ])('changes when %s changes', (_part, change) => {
    expect(messageIdFor({ ...parts, ...change })).not.toBe(messageIdFor(parts))
  })

  it('cannot be collided by moving characters between parts', () => {
    const a = messageIdFor({ ...parts, sendKey: 'plan:1', ranAt: '72026' })
    const b = messageIdFor({ ...parts, sendKey: 'plan:17', ranAt: '2026' })
    expect(a).not.toBe(b)
  })

  it('distinguishes 0 and null and "0" in content', () => {
    const ids = [0, null, '0', false].map((value) => messageIdFor({ ...parts, content: { value } }))
    expect(new Set(ids).size).toBe(4)
  })

  it('rejects a negative or fractional occurrence', () => {
    expect(() => messageIdFor({ ...parts, occurrence: -1 })).toThrow(RangeError)
    expect(() => messageIdFor({ ...parts, occurrence: 1.5 })).toThrow(RangeError)
  })
})

describe('messageIdHasher', () => {
  const nameOf = (p: Omit<typeof parts, 'content'> & { content: unknown }) =>
    [
      'lookstream.message-id.v1',
      p.destination,
      p.connection,
      p.sendKey,
      p.ranAt,
      p.identity,
      canonicalJson(p.content),
      String(p.occurrence),
    ]
      .map((part) => `${Buffer.byteLength(part)}:${part}`)
      .join('')

  it('gives the id of the documented recipe for every row, also after its buffer grows', () => {
    const send = { ...parts, sendKey: 'https://looker.example.com/download/' + 'k'.repeat(3000) }
    const idOf = messageIdHasher(send)
    const rows: { identity: string; content: unknown; occurrence: number }[] = [
      { identity: 'cust_123', content: parts.content, occurrence: 0 },
      { identity: 'ünïcödé-√', content: '{"traits":{"name":"Zoë 🚀"}}', occurrence: 3 },
      { identity: 'big', content: { blob: 'x'.repeat(20_000) }, occurrence: 0 },
      { identity: 'after-growth', content: { n: 0, nothing: null }, occurrence: 1 },
      { identity: '', content: '', occurrence: 0 },
    ]
    for (const row of rows) {
      const id = idOf(row.identity, row.content, row.occurrence)
      expect(id).toBe(referenceUuidV5(nameOf({ ...send, ...row }), MESSAGE_ID_NAMESPACE))
      expect(id).toBe(messageIdFor({ ...send, ...row }))
    }
  })

  it('keeps separate sends apart when used interleaved', () => {
    const a = messageIdHasher(parts)
    const b = messageIdHasher({ ...parts, sendKey: 'plan:18' })
    const fromA = a('u1', 'c', 0)
    expect(b('u1', 'c', 0)).not.toBe(fromA)
    expect(a('u1', 'c', 0)).toBe(fromA)
  })

  it('rejects a negative or fractional occurrence', () => {
    expect(() => messageIdHasher(parts)('u', 'c', -1)).toThrow(RangeError)
    expect(() => messageIdHasher(parts)('u', 'c', 0.5)).toThrow(RangeError)
  })
})

describe('canonicalJson and contentHash', () => {
  it('sorts keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    )
  })

  it('hashes equal values equally whatever their key order', () => {
    expect(contentHash({ a: 1, b: 2 })).toBe(contentHash({ b: 2, a: 1 }))
    expect(contentHash({ a: 1, b: 2 })).not.toBe(contentHash({ a: 1, b: 3 }))
    expect(contentHash({ a: 1 })).toBe(createHash('sha256').update('{"a":1}').digest('hex'))
  })
})
