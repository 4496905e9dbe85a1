import { createHash, timingSafeEqual } from 'node:crypto'
import { type IncomingHttpHeaders } from 'node:http'

export function secretDigest(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

// The digests of configured secrets, so a request hashes only what it presents. Configured secrets are few; the
// bound only keeps a caller that passes ever-new "secrets" from growing it without end.
const configuredDigests = new Map<string, Buffer>()
const maxConfiguredDigests = 1000

function configuredDigest(secret: string): Buffer {
  let digest = configuredDigests.get(secret)
  if (digest === undefined) {
    if (configuredDigests.size >= maxConfiguredDigests) configuredDigests.clear()
    digest = secretDigest(secret)
    configuredDigests.set(secret, digest)
  }
  return digest
}

// Hashing first gives equal-length inputs to timingSafeEqual, and every configured secret is compared so the time
// taken does not reveal which one (if any) matched.
export function matchesAnySecret(candidate: string, secrets: readonly string[]): boolean {
  return digestMatchesAnySecret(secretDigest(candidate), secrets)
}

/** As matchesAnySecret, given the candidate's secretDigest (a request checked against several lists hashes once). */
export function digestMatchesAnySecret(candidateDigest: Buffer, secrets: readonly string[]): boolean {
  let matched = false
  for (const secret of secrets) if (timingSafeEqual(candidateDigest, configuredDigest(secret))) matched = true
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
