import { afterEach, describe, expect, it } from 'vitest'
import { createLogger, createService, LookstreamError, type Service } from '../src/index.ts'

const config = { HOST: '127.0.0.1', PORT: 0, LOG_LEVEL: 'silent' as const }
const services: Service[] = []

function build(options: Partial<Parameters<typeof createService>[0]> = {}): Service {
  const service = createService({ name: 'test-svc', config, ...options })
  services.push(service)
  return service
}

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()))
})

describe('createService endpoints', () => {
  it('GET /healthz answers 200 {status: ok}', async () => {
    const { app } = build()
    const res = await app.inject({ method: 'GET', url: '/healthz' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'ok' })
  })

  it('GET /readyz answers 200 with each dependency check and its latency', async () => {
    const service = build({ readiness: { redis: () => undefined } })
    service.addReadinessCheck('kafka', async () => {
      await new Promise((resolve) => setImmediate(resolve))
      return true
    })
    const res = await service.app.inject({ method: 'GET', url: '/readyz' })
    expect(res.statusCode).toBe(200)
    const body = res.json<{ status: string; checks: Record<string, { status: string; latencyMs: number }> }>()
    expect(body.status).toBe('ok')
    expect(Object.keys(body.checks).sort()).toEqual(['kafka', 'redis'])
    for (const check of Object.values(body.checks)) {
      expect(check.status).toBe('ok')
      expect(check.latencyMs).toBeGreaterThanOrEqual(0)
    }
  })

  it('GET /readyz answers 503 naming the failing dependency and why', async () => {
    const service = build({ readinessTimeoutMs: 200 })
    service.addReadinessCheck('redis', () => undefined)
    service.addReadinessCheck('kafka', () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9')))
    service.addReadinessCheck('s3', () => false)
    service.addReadinessCheck('slow', () => new Promise(() => undefined))
    const res = await service.app.inject({ method: 'GET', url: '/readyz' })
    expect(res.statusCode).toBe(503)
    const body = res.json<{ status: string; checks: Record<string, { status: string; error?: string }> }>()
    expect(body.status).toBe('unavailable')
    expect(body.checks.redis).toMatchObject({ status: 'ok' })
    expect(body.checks.kafka).toMatchObject({ status: 'fail', error: 'connect ECONNREFUSED 127.0.0.1:9' })
    expect(body.checks.s3).toMatchObject({ status: 'fail', error: 'check returned false' })
    expect(body.checks.slow).toMatchObject({ status: 'fail', error: 'no answer within 200 ms' })
  })

  it('GET /readyz with no checks is ready', async () => {
    const res = await build().app.inject({ method: 'GET', url: '/readyz' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'ok', checks: {} })
  })

  it('GET /metrics serves the service registry with default metrics and a service label', async () => {
    const service = build()
    service.app.get('/work', () => 'done')
    await service.app.inject({ method: 'GET', url: '/work' })
    const res = await service.app.inject({ method: 'GET', url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toContain('text/plain')
    expect(res.body).toMatch(/^process_cpu_user_seconds_total\{service="test-svc"\} /m)
    expect(res.body).toMatch(/^nodejs_heap_size_used_bytes\{service="test-svc"\} /m)
    expect(res.body).toMatch(
      /^lookstream_http_request_duration_seconds_count\{service="test-svc",method="GET",route="\/work",status_code="200"\} 1$/m,
    )
  })

  it('GET /metrics reports the V8 heap cap the dashboards draw the heap against', async () => {
    const { getHeapStatistics } = await import('node:v8')
    const res = await build().app.inject({ method: 'GET', url: '/metrics' })
    const cap = /^lookstream_heap_limit_bytes\{service="test-svc"\} (\d+)$/m.exec(res.body)?.[1]
    expect(Number(cap)).toBe(getHeapStatistics().heap_size_limit)
  })

  it('uses its own registry per service, never the global one', async () => {
    const { register } = await import('prom-client')
    const a = build({ name: 'svc-a' })
    const b = build({ name: 'svc-b' })
    expect(a.registry).not.toBe(b.registry)
    expect(a.registry).not.toBe(register)
    expect(await register.metrics()).not.toContain('svc-a')
    const metrics = await b.app.inject({ method: 'GET', url: '/metrics' })
    expect(metrics.body).toContain('service="svc-b"')
    expect(metrics.body).not.toContain('service="svc-a"')
  })

  it('answers a LookstreamError with its status code and code', async () => {
    const service = build()
    service.app.get('/fail', () => {
      throw new LookstreamError('LS_TEST_TOO_BIG', 'too big', { statusCode: 413, cause: new Error('x') })
    })
    const res = await service.app.inject({ method: 'GET', url: '/fail' })
    expect(res.statusCode).toBe(413)
    expect(res.json()).toMatchObject({ code: 'LS_TEST_TOO_BIG', message: 'too big' })
  })

  it('rejects bodies over the body limit with 413', async () => {
    const service = build({ http: { bodyLimit: 16 } })
    service.app.post('/echo', (request) => request.body)
    const res = await service.app.inject({ method: 'POST', url: '/echo', payload: { text: 'x'.repeat(100) } })
    expect(res.statusCode).toBe(413)
  })

  it('listen() binds the configured host and reports the chosen port', async () => {
    const service = build()
    const address = await service.listen()
    expect(address.host).toBe('127.0.0.1')
    expect(address.port).toBeGreaterThan(0)
    const res = await fetch(`${address.url}/healthz`)
    expect(res.status).toBe(200)
  })
})

describe('createService logging', () => {
  it('writes ISO 8601 times and level names', () => {
    const lines: string[] = []
    const logger = createLogger({ name: 'format-svc', level: 'info', stream: { write: (line) => lines.push(line) } })
    logger.warn({ code: 'LS_DEST_REJECTED' }, 'dead-lettered')
    const record = JSON.parse(lines[0]!) as { level: unknown; time: unknown; msg: unknown }
    expect(record.level).toBe('warn')
    expect(record.msg).toBe('dead-lettered')
    expect(typeof record.time).toBe('string')
    expect(new Date(record.time as string).toISOString()).toBe(record.time)
  })

  it('never writes secrets: auth headers, secret query params and secret-named fields are redacted', async () => {
    const lines: string[] = []
    const logger = createLogger({ name: 'redact-svc', level: 'info', stream: { write: (line) => lines.push(line) } })
    const service = build({ logger })
    const secrets = ['tok3n-abc', 'wr1te-key', 'ap1-key', 'pa55word', 's3cret', 'n0nce/deadbeef', 'c00kie']
    service.app.post('/log', (request) => {
      request.log.info(
        {
          writeKey: secrets[1],
          connection: { name: 'default', apiKey: secrets[2], nested: [{ password: secrets[3] }] },
          ACTION_HUB_SECRET: secrets[4],
        },
        'handling',
      )
      request.log.error({ err: Object.assign(new Error('upstream failed'), { authorization: secrets[5] }) }, 'failed')
      return { ok: true }
    })
    const res = await service.app.inject({
      method: 'POST',
      url: `/log?token=${secrets[0]}&page=2`,
      headers: { authorization: `Token token="${secrets[5]}"`, cookie: `sid=${secrets[6]}`, 'user-agent': 'Looker/24' },
      payload: { x: 1 },
    })
    expect(res.statusCode).toBe(200)
    const output = lines.join('')
    for (const secret of secrets) expect(output).not.toContain(secret)

    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    const incoming = records.find((r) => r.msg === 'incoming request') as { req: Record<string, unknown> }
    expect(incoming.req.url).toBe('/log?token=%5Bredacted%5D&page=2')
    expect(incoming.req.headers).toMatchObject({
      authorization: '[redacted]',
      cookie: '[redacted]',
      'user-agent': 'Looker/24',
    })
    const handling = records.find((r) => r.msg === 'handling')
    expect(handling).toMatchObject({
      writeKey: '[redacted]',
      connection: { name: 'default', apiKey: '[redacted]', nested: [{ password: '[redacted]' }] },
      ACTION_HUB_SECRET: '[redacted]',
      name: 'redact-svc',
    })
    const failed = records.find((r) => r.msg === 'failed') as { err: Record<string, unknown> }
    expect(failed.err).toMatchObject({ message: 'upstream failed', authorization: '[redacted]' })
  })
})
