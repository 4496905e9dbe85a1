import { createHash } from 'node:crypto'

// A deterministic anonymousId for rows that identify a person only by email (Segment needs userId or
// anonymousId). The reference drew a random UUID per row, so every re-send created new anonymous profiles.
// UUIDv5 (RFC 9562) of the lower-cased email in lookstream's own namespace: the same email always gives the
// same id, and the id does not reveal the email.
const NAMESPACE = Buffer.from('5d1c3c4e6b1f4f0a9a8e2f7c3b9d0e11', 'hex')

export function anonymousIdForEmail(email: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(`email:${email.trim().toLowerCase()}`).digest()
  hash[6] = (hash[6]! & 0x0f) | 0x50
  hash[8] = (hash[8]! & 0x3f) | 0x80
  const hex = hash.subarray(0, 16).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
