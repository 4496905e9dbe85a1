// Key names that suggest a secret. Matched as substrings, case-insensitively, so that APIKEY,
// SEGMENT_WRITE_KEY, writeKey and x-api-key are all caught; a few false positives (a "keys" count)
// cost nothing, a missed secret costs a rotation.
const SECRET_NAME = /secret|key|token|passw(or)?d|pwd|credential|auth|cookie|signature|private/i

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name)
}
