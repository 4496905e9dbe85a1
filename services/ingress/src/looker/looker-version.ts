// Looker identifies itself as `LookerOutgoingWebhook/<version>`, with loose versions such as `7.3.00004561`
// (the reference reads that with semver's loose mode as 7.3.4561).

export type LookerVersion = readonly [major: number, minor: number, patch: number]

const USER_AGENT = /^LookerOutgoingWebhook\/v?(\d{1,9})(?:\.(\d{1,12}))?(?:\.(\d{1,12}))?/

export function lookerVersionFrom(userAgent: string | undefined): LookerVersion | undefined {
  const match = userAgent === undefined ? null : USER_AGENT.exec(userAgent.trim())
  if (match === null) return undefined
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)]
}

export function isAtLeast(version: LookerVersion | undefined, minimum: LookerVersion): boolean {
  if (version === undefined) return false
  for (let i = 0; i < 3; i++) {
    if (version[i]! !== minimum[i]!) return version[i]! > minimum[i]!
  }
  return true
}
