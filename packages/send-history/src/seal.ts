import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

// Row details kept for the send history (the values that identify a row, a vendor's message that may quote
// them) are customer data. They reach Redis only sealed with AES-256-GCM under a key derived from
// SEND_HISTORY_SECRET, which the ingress and the destination services hold and Redis never sees.

const IV_BYTES = 12
const TAG_BYTES = 16
const VERSION = 'v1'

/** A key for sealing row details; opaque, never serialized. */
export interface HistoryKey {
  readonly id: 'history-key'
  readonly bytes: Buffer
}

export const MIN_SECRET_LENGTH = 16

export function deriveHistoryKey(secret: string): HistoryKey {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new Error(`the send history secret must be at least ${MIN_SECRET_LENGTH} characters`)
  }
  const bytes = Buffer.from(hkdfSync('sha256', secret, 'lookstream', 'send-history row details v1', 32))
  return { id: 'history-key', bytes }
}

/** `v1.<base64url(iv | ciphertext | tag)>` */
export function seal(key: HistoryKey, plaintext: string): string {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key.bytes, iv)
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return `${VERSION}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`
}

/** The plaintext, or undefined when the text was sealed under another key or altered. */
export function open(key: HistoryKey, sealed: string): string | undefined {
  if (!sealed.startsWith(`${VERSION}.`)) return undefined
  const raw = Buffer.from(sealed.slice(VERSION.length + 1), 'base64url')
  if (raw.length < IV_BYTES + TAG_BYTES) return undefined
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.bytes, raw.subarray(0, IV_BYTES))
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    )
  } catch {
    return undefined
  }
}
