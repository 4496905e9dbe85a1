import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const
export type SaslMechanism = (typeof SASL_MECHANISMS)[number]

export function isSaslMechanism(name: string): name is SaslMechanism {
  return (SASL_MECHANISMS as readonly string[]).includes(name)
}

export interface SaslUsersConfig {
  mechanisms: readonly SaslMechanism[]
  /** user name → password. */
  users: ReadonlyMap<string, string>
}

// One step of an exchange: the bytes to answer with, whether the client is now authenticated, or a failure.
export type SaslStep = { response: Buffer; done: boolean } | { failed: string }

export interface SaslSession {
  step(token: Buffer): SaslStep
}

// Kafka's own wording, so clients and operators see the message they know.
const INVALID_CREDENTIALS = (mechanism: string) =>
  `Authentication failed during authentication due to invalid credentials with SASL mechanism ${mechanism}`

// Compares in constant time whatever the lengths (hashing first gives equal lengths).
function sameSecret(a: Buffer, b: Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

interface ScramCredential {
  salt: Buffer
  iterations: number
  storedKey: Buffer
  serverKey: Buffer
}

const SCRAM_ITERATIONS = 4096
const HASHES = { 'SCRAM-SHA-256': 'sha256', 'SCRAM-SHA-512': 'sha512' } as const
type ScramMechanism = keyof typeof HASHES

function hmac(hash: string, key: Buffer, text: string): Buffer {
  return createHmac(hash, key).update(text).digest()
}

function scramCredential(mechanism: ScramMechanism, password: string): ScramCredential {
  const hash = HASHES[mechanism]
  const salt = randomBytes(16)
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, SCRAM_ITERATIONS, hash === 'sha256' ? 32 : 64, hash)
  return {
    salt,
    iterations: SCRAM_ITERATIONS,
    storedKey: createHash(hash)
      .update(hmac(hash, salted, 'Client Key'))
      .digest(),
    serverKey: hmac(hash, salted, 'Server Key'),
  }
}

// RFC 5802 attribute list: "n=user,r=nonce" → Map.
function attributes(text: string): Map<string, string> | null {
  const out = new Map<string, string>()
  for (const part of text.split(',')) {
    const m = /^([a-zA-Z])=(.*)$/s.exec(part)
    if (m === null) return null
    out.set(m[1]!, m[2]!)
  }
  return out
}

// saslname: "=2C" is ",", "=3D" is "="; any other "=" is malformed.
function decodeSaslName(name: string): string | null {
  if (/=(?!2C|3D)/.test(name)) return null
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=')
}

class PlainSession implements SaslSession {
  private readonly users: ReadonlyMap<string, string>

  constructor(users: ReadonlyMap<string, string>) {
    this.users = users
  }

  step(token: Buffer): SaslStep {
    // [authzid] NUL authcid NUL passwd (RFC 4616)
    const parts = token.toString('utf8').split('\0')
    if (parts.length !== 3) return { failed: 'Invalid SASL/PLAIN message: expected 3 tokens' }
    const [authzid, username, password] = parts as [string, string, string]
    if (authzid !== '' && authzid !== username) {
      return { failed: 'Authentication failed: Client requested an authorization id that is different from username' }
    }
    const expected = this.users.get(username)
    // An unknown user costs the same comparison as a wrong password.
    const ok = sameSecret(Buffer.from(password), Buffer.from(expected ?? '\0unknown user')) && expected !== undefined
    return ok
      ? { response: Buffer.alloc(0), done: true }
      : { failed: 'Authentication failed: Invalid username or password' }
  }
}

class ScramSession implements SaslSession {
  private state: 'first' | 'final' | 'done' = 'first'
  private credential: ScramCredential | null = null
  private clientFirstBare = ''
  private serverFirst = ''
  private nonce = ''
  private gs2Header = ''
  private readonly mechanism: ScramMechanism
  private readonly credentials: ReadonlyMap<string, ScramCredential>

  constructor(mechanism: ScramMechanism, credentials: ReadonlyMap<string, ScramCredential>) {
    this.mechanism = mechanism
    this.credentials = credentials
  }

  step(token: Buffer): SaslStep {
    if (this.state === 'first') return this.first(token.toString('utf8'))
    if (this.state === 'final') return this.final(token.toString('utf8'))
    return { failed: 'SCRAM exchange already complete' }
  }

  private first(message: string): SaslStep {
    // gs2-header "n,," or "n,a=authzid," then client-first-message-bare.
    const m = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(message)
    if (m === null) return { failed: `Invalid SCRAM client first message (channel binding is not supported)` }
    this.gs2Header = `${m[1]},${m[2] ?? ''},`
    this.clientFirstBare = m[3]!
    const attrs = attributes(this.clientFirstBare)
    const rawName = attrs?.get('n')
    const clientNonce = attrs?.get('r')
    if (attrs === null || rawName === undefined || clientNonce === undefined || clientNonce === '') {
      return { failed: 'Invalid SCRAM client first message' }
    }
    const username = decodeSaslName(rawName)
    const credential = username === null ? undefined : this.credentials.get(username)
    if (credential === undefined) return { failed: INVALID_CREDENTIALS(this.mechanism) }
    const authzid = m[2]?.slice(2)
    if (authzid !== undefined && authzid !== '' && decodeSaslName(authzid) !== username) {
      return { failed: 'Authentication failed: Client requested an authorization id that is different from username' }
    }
    this.credential = credential
    this.nonce = clientNonce + randomBytes(18).toString('base64url')
    this.serverFirst = `r=${this.nonce},s=${credential.salt.toString('base64')},i=${credential.iterations}`
    this.state = 'final'
    return { response: Buffer.from(this.serverFirst), done: false }
  }

  private final(message: string): SaslStep {
    const credential = this.credential!
    const proofAt = message.lastIndexOf(',p=')
    const attrs = proofAt < 0 ? null : attributes(message)
    if (attrs === null) return { failed: 'Invalid SCRAM client final message' }
    const withoutProof = message.slice(0, proofAt)
    if (attrs.get('c') !== Buffer.from(this.gs2Header).toString('base64')) {
      return { failed: 'Invalid SCRAM client final message: channel binding does not match' }
    }
    // librdkafka sends its client nonce again in front of the full nonce; Kafka's broker accepts that by
    // checking that the final nonce ends with the one it sent, and so does this one.
    if (!(attrs.get('r') ?? '').endsWith(this.nonce)) {
      return { failed: 'Invalid SCRAM client final message: nonce does not match' }
    }
    const hash = HASHES[this.mechanism]
    const proof = Buffer.from(attrs.get('p') ?? '', 'base64')
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`
    const signature = hmac(hash, credential.storedKey, authMessage)
    if (proof.length !== signature.length) return { failed: INVALID_CREDENTIALS(this.mechanism) }
    const clientKey = Buffer.alloc(proof.length)
    for (let i = 0; i < proof.length; i += 1) clientKey[i] = proof[i]! ^ signature[i]!
    if (!timingSafeEqual(createHash(hash).update(clientKey).digest(), credential.storedKey)) {
      return { failed: INVALID_CREDENTIALS(this.mechanism) }
    }
    this.state = 'done'
    const serverSignature = hmac(hash, credential.serverKey, authMessage).toString('base64')
    return { response: Buffer.from(`v=${serverSignature}`), done: true }
  }
}

/** The broker's users, prepared once: SCRAM keeps only salted keys, as a Kafka broker stores them. */
export class SaslAuthority {
  readonly mechanisms: readonly SaslMechanism[]
  private readonly plainUsers: ReadonlyMap<string, string>
  private readonly scram = new Map<ScramMechanism, Map<string, ScramCredential>>()

  constructor(config: SaslUsersConfig) {
    this.mechanisms = config.mechanisms
    this.plainUsers = config.mechanisms.includes('PLAIN') ? config.users : new Map()
    for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const) {
      if (!config.mechanisms.includes(mechanism)) continue
      const credentials = new Map<string, ScramCredential>()
      for (const [user, password] of config.users) credentials.set(user, scramCredential(mechanism, password))
      this.scram.set(mechanism, credentials)
    }
  }

  /** A session for an enabled mechanism, or null. */
  session(mechanism: string): SaslSession | null {
    if (!isSaslMechanism(mechanism) || !this.mechanisms.includes(mechanism)) return null
    if (mechanism === 'PLAIN') return new PlainSession(this.plainUsers)
    return new ScramSession(mechanism, this.scram.get(mechanism)!)
  }
}

/**
 * Parses a users file: one `name:password` per line (the first colon separates them), blank lines and
 * lines starting with # ignored. Errors name the line, never its password.
 */
export function parseUsers(text: string, source: string): Map<string, string> {
  const users = new Map<string, string>()
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return
    addUser(users, line, `${source} line ${i + 1}`)
  })
  return users
}

export function addUser(users: Map<string, string>, entry: string, where: string): void {
  const colon = entry.indexOf(':')
  if (colon <= 0 || colon === entry.length - 1) throw new Error(`${where}: expected name:password`)
  const name = entry.slice(0, colon)
  if (users.has(name)) throw new Error(`${where}: user '${name}' is given twice`)
  users.set(name, entry.slice(colon + 1))
}
