import { uuidV5 } from '@lookstream/events'

// A deterministic anonymousId for rows that identify a person only by email (Segment needs userId or
// anonymousId). The reference drew a random UUID per row, so every re-send created new anonymous profiles.
// UUIDv5 (RFC 9562) of the lower-cased email in lookstream's own namespace: the same email always gives the
// same id, and the id does not reveal the email.
const NAMESPACE = '5d1c3c4e-6b1f-4f0a-9a8e-2f7c3b9d0e11'

export function anonymousIdForEmail(email: string): string {
  return uuidV5(`email:${email.trim().toLowerCase()}`, NAMESPACE)
}
