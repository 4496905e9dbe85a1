import { describe, expect, it } from 'vitest'
import { checkDownloadUrl, parseLookerHosts } from '../src/looker/looker-hosts.ts'

describe('LOOKER_HOSTS', () => {
  const allowed = parseLookerHosts(
    'looker.example.com, Acme.looker.com:19999 ,https://eu.looker.com, http://127.0.0.1:8123',
  )

  it('parses bare hosts as https, keeps explicit ports and http origins', () => {
    expect(allowed).toEqual([
      { protocol: 'https:', hostname: 'looker.example.com', port: '443' },
      { protocol: 'https:', hostname: 'acme.looker.com', port: '19999' },
      { protocol: 'https:', hostname: 'eu.looker.com', port: '443' },
      { protocol: 'http:', hostname: '127.0.0.1', port: '8123' },
    ])
  })

  it('matches scheme, host and port exactly', () => {
    const ok = (url: string) => checkDownloadUrl(url, allowed).ok
    expect(ok('https://looker.example.com/api/x?token=1')).toBe(true)
    expect(ok('https://LOOKER.example.com:443/x')).toBe(true)
    expect(ok('https://acme.looker.com:19999/x')).toBe(true)
    expect(ok('http://127.0.0.1:8123/download')).toBe(true)
    expect(ok('http://looker.example.com/x')).toBe(false)
    expect(ok('https://looker.example.com:8443/x')).toBe(false)
    expect(ok('https://acme.looker.com/x')).toBe(false)
    expect(ok('https://127.0.0.1:8123/x')).toBe(false)
    expect(ok('http://127.0.0.1:8124/x')).toBe(false)
    expect(ok('https://looker.example.com.evil.net/x')).toBe(false)
    expect(ok('https://user:pw@looker.example.com/x')).toBe(false)
    expect(ok('file:///etc/passwd')).toBe(false)
    expect(ok('not a url')).toBe(false)
  })

  it('explains a refusal', () => {
    expect(checkDownloadUrl('https://evil.example.net/x', allowed)).toEqual({
      ok: false,
      reason: 'download_url origin https://evil.example.net:443 is not in LOOKER_HOSTS.',
    })
  })

  it('refuses http entries without a port and entries with paths', () => {
    expect(() => parseLookerHosts('http://looker.internal')).toThrow(/must name its port/)
    expect(() => parseLookerHosts('looker.example.com/path')).toThrow(/bare host or origin/)
  })
})
