import { createHash, timingSafeEqual } from 'node:crypto'
import { type IncomingHttpHeaders } from 'node:http'

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

// Hashing first gives equal-length inputs to timingSafeEqual, and every configured secret is compared so the time
// taken does not reveal which one (if any) matched.
export function matchesAnySecret(candidate: string, secrets: readonly string[]): boolean {
  const candidateDigest = digest(candidate)
  let matched = false
  for (const secret of secrets) if (timingSafeEqual(candidateDigest, digest(secret))) matched = true
  return matched
}

export interface BasicCredentials {
  user: string
  password: string
}

export type AuthorizationHeader =
  | { scheme: 'none' }
  | { scheme: 'basic'; credentials: BasicCredentials | null }
  | { scheme: 'bearer'; token: string }
  | { scheme: 'other' }

export function readAuthorization(headers: IncomingHttpHeaders): AuthorizationHeader {
  const value = headers.authorization
  if (value === undefined || value === '') return { scheme: 'none' }
  const space = value.indexOf(' ')
  const scheme = (space === -1 ? value : value.slice(0, space)).toLowerCase()
  const rest = space === -1 ? '' : value.slice(space + 1).trim()
  if (scheme === 'bearer') return { scheme: 'bearer', token: rest }
  if (scheme !== 'basic') return { scheme: 'other' }
  const decoded = Buffer.from(rest, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) return { scheme: 'basic', credentials: null }
  return { scheme: 'basic', credentials: { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) } }
}
