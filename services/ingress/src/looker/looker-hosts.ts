// Which download_url origins the ingress may fetch from. LOOKER_HOSTS is a comma-separated list of
//   looker.example.com            → https://looker.example.com:443 only
//   looker.example.com:19999      → https://looker.example.com:19999 only
//   https://looker.example.com    → same as the bare host
//   http://127.0.0.1:9999         → plain http, allowed ONLY when written out with its scheme and port
// A download_url matches when scheme, host (case-insensitive) and port are all equal to one entry's. Nothing
// else (userinfo, other ports, http for an https entry) is fetched: the URL comes from the request body, so
// this is what stops the hub from being used to reach arbitrary hosts.

export interface LookerOrigin {
  protocol: 'https:' | 'http:'
  hostname: string
  port: string
}

function defaultPort(protocol: string): string {
  return protocol === 'http:' ? '80' : '443'
}

export function parseLookerHosts(list: string): LookerOrigin[] {
  const origins: LookerOrigin[] = []
  for (const raw of list
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')) {
    const explicitScheme = /^https?:\/\//i.test(raw)
    if (explicitScheme && /^http:\/\//i.test(raw) && !/:\d+\/?$/.test(raw)) {
      throw new TypeError(`LOOKER_HOSTS entry ${raw}: an http:// entry must name its port`)
    }
    let url: URL
    try {
      url = new URL(explicitScheme ? raw : `https://${raw}`)
    } catch {
      throw new TypeError(`LOOKER_HOSTS entry ${raw} is not a host, host:port or origin`)
    }
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.username || url.password) {
      throw new TypeError(`LOOKER_HOSTS entry ${raw} must be a bare host or origin`)
    }
    const protocol = url.protocol === 'http:' ? 'http:' : 'https:'
    origins.push({ protocol, hostname: url.hostname.toLowerCase(), port: url.port || defaultPort(protocol) })
  }
  return origins
}

export type DownloadUrlCheck = { ok: true; url: URL } | { ok: false; reason: string }

export function checkDownloadUrl(raw: string, allowed: readonly LookerOrigin[]): DownloadUrlCheck {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return { ok: false, reason: 'download_url is not a valid URL.' }
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { ok: false, reason: `download_url scheme ${url.protocol} is not allowed.` }
  }
  if (url.username || url.password) return { ok: false, reason: 'download_url must not carry credentials.' }
  const port = url.port || defaultPort(url.protocol)
  const hostname = url.hostname.toLowerCase()
  const match = allowed.some((o) => o.protocol === url.protocol && o.hostname === hostname && o.port === port)
  if (!match) {
    return { ok: false, reason: `download_url origin ${url.protocol}//${url.hostname}:${port} is not in LOOKER_HOSTS.` }
  }
  return { ok: true, url }
}
