import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

// The reference hub's tokens: `<nonce>/<hex HMAC-SHA512(secret, nonce)>`, sent as
// `Authorization: Token token="<token>"`. Stateless: any nonce signed with the secret is valid, and
// rotating the secret revokes every token.

// Anchored, non-greedy on the quotes: the reference's unanchored `/[T|t]oken token="(.*)"/` accepts
// arbitrary prefixes and a greedy capture across quotes. Tokens never contain a quote.
const HEADER = /^[Tt]oken token="([^"]*)"$/
// HMAC-SHA512 in lowercase hex; a nonce is whatever the generator printed, but never contains '/'.
const TOKEN = /^([^/\s]+)\/([0-9a-f]{128})$/
const MAX_HEADER_LENGTH = 1024

export function signNonce(secret: string, nonce: string): string {
  return createHmac('sha512', secret).update(nonce).digest('hex')
}

export function tokenFromNonce(secret: string, nonce: string): string {
  return `${nonce}/${signNonce(secret, nonce)}`
}

export function generateToken(secret: string): string {
  return tokenFromNonce(secret, randomBytes(32).toString('hex'))
}

/** The token inside an Authorization header, or undefined when the header is not in the Action Hub format. */
export function tokenFromHeader(header: string | undefined): string | undefined {
  if (header === undefined || header.length > MAX_HEADER_LENGTH) return undefined
  return HEADER.exec(header.trim())?.[1]
}

/** Never throws. Compares digests of both sides so the comparison is constant-time whatever the lengths. */
export function isValidToken(secret: string, token: string): boolean {
  const match = TOKEN.exec(token)
  const nonce = match?.[1] ?? ''
  const given = match?.[2] ?? ''
  const expected = signNonce(secret, nonce)
  const equal = timingSafeEqual(sha256(given), sha256(expected))
  return match !== null && equal
}

export function isAuthorized(secret: string, header: string | undefined): boolean {
  const token = tokenFromHeader(header)
  return token !== undefined && isValidToken(secret, token)
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
