import { createHash, hash } from 'node:crypto'
import { canonicalJson } from './canonical-json.ts'

/** RFC 9562 namespace for lookstream message ids: uuidV5('urn:lookstream:message-id', NAMESPACE_URL). */
export const MESSAGE_ID_NAMESPACE = '516adf3f-38a6-5117-b507-0b84598ca4ae'

/** RFC 9562 §6.6 predefined namespace for URLs, used only to derive MESSAGE_ID_NAMESPACE. */
export const NAMESPACE_URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Name-based UUID, version 5 (SHA-1), RFC 9562 §5.5. */
export function uuidV5(name: string | Uint8Array, namespace: string): string {
  if (!UUID.test(namespace)) throw new TypeError(`namespace is not a UUID: ${namespace}`)
  const hash = createHash('sha1')
    .update(Buffer.from(namespace.replaceAll('-', ''), 'hex'))
    .update(typeof name === 'string' ? Buffer.from(name, 'utf8') : name)
    .digest()
  hash[6] = (hash[6]! & 0x0f) | 0x50
  hash[8] = (hash[8]! & 0x3f) | 0x80
  const hex = hash.subarray(0, 16).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export interface MessageIdParts {
  /** Destination id, e.g. 'braze'. */
  destination: string
  /** Connection name, e.g. 'default'. */
  connection: string
  /** The Looker send: scheduled plan id, or webhook id for an unscheduled send. */
  sendKey: string
  /** Looker's ran_at for the send; the next run of the same plan gets new ids. */
  ranAt: string
  /** The row's identity (userId, anonymousId or groupId as it will appear in the message). */
  identity: string
  /** The row's values (or a hash of them); always encoded as canonical JSON, so key order does not matter. */
  content: unknown
  /** 0 for the first row with this identity and content in the send, 1 for the next identical row, … */
  occurrence: number
}

const NAME_VERSION = 'lookstream.message-id.v1'

/** The parts of a messageId that stay the same for every row of one send. */
export type MessageIdSendParts = Pick<MessageIdParts, 'destination' | 'connection' | 'sendKey' | 'ranAt'>

/** messageIdFor with the send's parts bound: (identity, content, occurrence) → the same id messageIdFor gives. */
export type MessageIdHasher = (identity: string, content: unknown, occurrence: number) => string

const NAMESPACE_BYTES = Buffer.from(MESSAGE_ID_NAMESPACE.replaceAll('-', ''), 'hex')

function lengthPrefixed(field: string): string {
  return `${Buffer.byteLength(field, 'utf8')}:${field}`
}

/**
 * Deterministic messageId: the same Looker run re-delivered gets the same ids (so every dedupe downstream
 * holds), while any change in destination, connection, send, run, identity, content or occurrence gives a
 * new one. Each part is length-prefixed, so no two different part lists can encode to the same name.
 */
export function messageIdFor(parts: MessageIdParts): string {
  return messageIdHasher(parts)(parts.identity, parts.content, parts.occurrence)
}

/**
 * The per-row form of messageIdFor for a producer that ids many rows of one send: the namespace and the
 * send's parts are encoded once into a reusable buffer, and each row only appends its own parts and hashes.
 * The ingress calls this once per row, so it avoids the intermediate strings and Buffers of a fresh
 * encoding (see bench/README.md, ingress memory).
 */
export function messageIdHasher(send: MessageIdSendParts): MessageIdHasher {
  const prefix = [NAME_VERSION, send.destination, send.connection, send.sendKey, send.ranAt]
    .map(lengthPrefixed)
    .join('')
  const prefixBytes = NAMESPACE_BYTES.length + Buffer.byteLength(prefix, 'utf8')
  let scratch = Buffer.allocUnsafe(Math.max(1024, prefixBytes * 2))
  NAMESPACE_BYTES.copy(scratch, 0)
  scratch.write(prefix, NAMESPACE_BYTES.length, 'utf8')
  return (identity, content, occurrence) => {
    if (!Number.isSafeInteger(occurrence) || occurrence < 0) {
      throw new RangeError(`occurrence must be a non-negative integer, got ${occurrence}`)
    }
    const tail = lengthPrefixed(identity) + lengthPrefixed(canonicalJson(content)) + lengthPrefixed(String(occurrence))
    const total = prefixBytes + Buffer.byteLength(tail, 'utf8')
    if (total > scratch.length) {
      const grown = Buffer.allocUnsafe(total * 2)
      scratch.copy(grown, 0, 0, prefixBytes)
      scratch = grown
    }
    scratch.write(tail, prefixBytes, 'utf8')
    return uuidFromSha1Hex(hash('sha1', scratch.subarray(0, total), 'hex'))
  }
}

/** Formats a SHA-1 digest (hex) as a version 5 UUID: RFC 9562 §5.5 version and variant bits set. */
function uuidFromSha1Hex(hex: string): string {
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}
