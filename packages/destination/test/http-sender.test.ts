import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpRequest } from '../src/destination.ts'
import { PermanentError, RetryableError } from '../src/errors.ts'
import { HttpSender } from '../src/http-sender.ts'

// A real HTTP server on loopback; each test picks its behaviour by path.
let server: Server
let base: string
const received: { method: string; path: string; headers: IncomingMessage['headers']; body: string }[] = []
const held: ServerResponse[] = []

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      })
      if (req.url === '/hang') return void held.push(res)
      if (req.url === '/slow-body') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('first part')
        return void held.push(res)
      }
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.end('a'.repeat(40_000) + 'b'.repeat(40_000))
        return
      }
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.writeHead(207, { 'content-type': 'application/json', 'x-ratelimit-remaining': '41' })
      res.end('{"message":"success"}')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  for (const res of held) res.destroy()
  server.closeAllConnections()
  server.close()
  await once(server, 'close')
})

const post = (path: string, body = '{"batch":[]}'): HttpRequest => ({
  url: `${base}${path}`,
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: 'Bearer secret-token' },
  body,
})

describe('HttpSender', () => {
  it('sends method, path with query, headers and body, and returns status, lower-case headers and body', async () => {
    const sender = new HttpSender({ allowedHosts: ['127.0.0.1'], timeoutMs: 5000, connectionsPerOrigin: 2 })
    try {
      const response = await sender.send(post('/users/track?x=1', '{"attributes":[{"external_id":"u1"}]}'))
      expect(response.status).toBe(207)
      expect(response.body).toBe('{"message":"success"}')
      expect(response.headers['x-ratelimit-remaining']).toBe('41')
      expect(response.headers['set-cookie']).toEqual(['a=1', 'b=2'])
      const request = received.at(-1)!
      expect(request).toMatchObject({ method: 'POST', path: '/users/track?x=1' })
      expect(request.body).toBe('{"attributes":[{"external_id":"u1"}]}')
      expect(request.headers.authorization).toBe('Bearer secret-token')
    } finally {
      await sender.close()
    }
  })

  it('keeps only maxResponseBytes of a long body, and the connection goes on serving requests', async () => {
    const sender = new HttpSender({
      allowedHosts: ['127.0.0.1'],
      timeoutMs: 5000,
      connectionsPerOrigin: 1,
      maxResponseBytes: 50_000,
    })
    try {
      const big = await sender.send(post('/big'))
      expect(big.body.length).toBe(50_000)
      expect(big.body).toBe('a'.repeat(40_000) + 'b'.repeat(10_000))
      const next = await sender.send(post('/after-big'))
      expect(next.status).toBe(207)
    } finally {
      await sender.close()
    }
  })

  it('refuses a host that is not on the allowlist before connecting, naming only the origin', async () => {
    const sender = new HttpSender({ allowedHosts: ['api.example.com'], timeoutMs: 5000, connectionsPerOrigin: 1 })
    const before = received.length
    try {
      const err = await sender.send(post('/users/track?token=secret')).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PermanentError)
      expect((err as PermanentError).code).toBe('LS_DEST_HOST_NOT_ALLOWED')
      expect((err as Error).message).toBe(`host of ${base} is not on the allowlist`)
      expect(received.length).toBe(before)
      expect(sender.isAllowed(`${base}/x`)).toBe(false)
      expect(sender.isAllowed('ftp://api.example.com/x')).toBe(false)
      expect(sender.isAllowed('not a url')).toBe(false)
      expect(sender.isAllowed('https://API.example.com/x')).toBe(true)
    } finally {
      await sender.close()
    }
  })

  it('answers a response that never comes with a retryable timeout', async () => {
    const sender = new HttpSender({ allowedHosts: ['127.0.0.1'], timeoutMs: 300, connectionsPerOrigin: 1 })
    try {
      const err = await sender.send(post('/hang')).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RetryableError)
      expect((err as RetryableError).code).toBe('LS_DEST_TIMEOUT')
      expect((err as Error).message).toBe('timeout after 300 ms')
    } finally {
      await sender.close()
    }
  })

  it('answers a body that stops arriving with a retryable timeout', async () => {
    const sender = new HttpSender({ allowedHosts: ['127.0.0.1'], timeoutMs: 300, connectionsPerOrigin: 1 })
    try {
      const err = await sender.send(post('/slow-body')).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RetryableError)
      expect((err as RetryableError).code).toBe('LS_DEST_TIMEOUT')
    } finally {
      await sender.close()
    }
  })

  it('answers a refused connection with a retryable network error', async () => {
    const closed = createServer()
    closed.listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const port = (closed.address() as AddressInfo).port
    closed.close()
    await once(closed, 'close')
    const sender = new HttpSender({ allowedHosts: ['127.0.0.1'], timeoutMs: 2000, connectionsPerOrigin: 1 })
    try {
      const err = await sender.send({ ...post('/x'), url: `http://127.0.0.1:${port}/x` }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RetryableError)
      expect((err as RetryableError).code).toBe('LS_DEST_NETWORK')
      expect((err as Error).message).toMatch(/^network error: .*ECONNREFUSED/)
    } finally {
      await sender.close()
    }
  })

  it('stops waiting when its signal aborts, with the signal reason', async () => {
    const sender = new HttpSender({ allowedHosts: ['127.0.0.1'], timeoutMs: 10_000, connectionsPerOrigin: 1 })
    const controller = new AbortController()
    try {
      const pending = sender.send(post('/hang'), controller.signal).catch((e: unknown) => e)
      const before = held.length
      await expect.poll(() => held.length).toBeGreaterThan(before)
      const reason = new Error('shutting down')
      controller.abort(reason)
      expect(await pending).toBe(reason)
      const aborted = new AbortController()
      aborted.abort(new Error('already'))
      expect(((await sender.send(post('/x'), aborted.signal).catch((e: unknown) => e)) as Error).message).toBe(
        'already',
      )
    } finally {
      await sender.close()
    }
  })
})
