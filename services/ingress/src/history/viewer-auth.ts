import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { isValidToken, tokenFromHeader } from '../looker/token.ts'

// The send history's own read-only credential. A viewer signs in with VIEWER_TOKEN (login form, or
// `Authorization: Bearer <token>` for scripts); the browser then holds a session cookie
// `<expiry ms>.<HMAC-SHA256(key derived from the token, expiry)>`, so changing the token ends every session.
// The Action Hub token is refused by name wherever it is offered: it executes sends, the page only reads.

export const SESSION_COOKIE = 'lookstream_viewer'
export const SESSION_SECONDS = 12 * 3600

export type ViewerCheck = 'ok' | 'action-hub-token' | 'missing' | 'invalid'

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

function sameText(a: string, b: string): boolean {
  // Digests have equal lengths, so the comparison takes the same time whatever the inputs' lengths.
  return timingSafeEqual(digest(a), digest(b))
}

export class ViewerAuth {
  private readonly sessionKey: Buffer
  private readonly viewerToken: string
  private readonly actionHubSecret: string

  constructor(viewerToken: string, actionHubSecret: string) {
    this.viewerToken = viewerToken
    this.actionHubSecret = actionHubSecret
    if (sameText(viewerToken, actionHubSecret) || isValidToken(actionHubSecret, viewerToken)) {
      throw new Error('VIEWER_TOKEN must differ from ACTION_HUB_SECRET and from every Action Hub token')
    }
    this.sessionKey = createHmac('sha256', viewerToken).update('lookstream send history session').digest()
  }

  /** A token offered at the login form or as a Bearer token. */
  checkToken(given: string): ViewerCheck {
    if (given === '') return 'missing'
    if (isValidToken(this.actionHubSecret, given)) return 'action-hub-token'
    return sameText(given, this.viewerToken) ? 'ok' : 'invalid'
  }

  issueSession(now = Date.now()): string {
    const expires = now + SESSION_SECONDS * 1000
    return `${expires}.${this.sign(expires)}`
  }

  checkSession(value: string | undefined, now = Date.now()): ViewerCheck {
    if (value === undefined || value === '') return 'missing'
    const match = /^(\d{13})\.([0-9a-f]{64})$/.exec(value)
    const expires = Number(match?.[1] ?? 0)
    const valid = sameText(match?.[2] ?? '', this.sign(expires))
    return match !== null && valid && expires > now ? 'ok' : 'invalid'
  }

  /** Checks a request's Authorization header first, then its session cookie. */
  checkRequest(authorization: string | undefined, session: string | undefined): ViewerCheck {
    if (authorization !== undefined && authorization !== '') {
      if (tokenFromHeader(authorization) !== undefined || /^\s*token\b/i.test(authorization)) return 'action-hub-token'
      const bearer = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization.trim())
      return bearer ? this.checkToken(bearer[1]!) : 'invalid'
    }
    return this.checkSession(session)
  }

  private sign(expires: number): string {
    return createHmac('sha256', this.sessionKey).update(String(expires)).digest('hex')
  }
}
