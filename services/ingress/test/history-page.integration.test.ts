import { sendRecordKey } from '@lookstream/events'
import { deriveHistoryKey, recordRowFailures } from '@lookstream/send-history'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ViewerAuth } from '../src/history/viewer-auth.ts'
import { createTopics, post, SECRET, startIngress, TOKEN, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'

// The send history page over plain HTTP: access, hostile input (HTML, CSV formulas, bad ids and filters), headers.

const VIEWER_TOKEN = 'viewer-token-for-the-http-test-0123456789'
const HISTORY_SECRET = 'history-secret-for-the-http-test'
const viewer = { authorization: `Bearer ${VIEWER_TOKEN}` }
let stub: LookerStub
let ingress: Ingress
let sendId: string

async function get(path: string, headers: Record<string, string> = viewer) {
  const response = await request(`${ingress.url}${path}`, { headers })
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() }
}

beforeAll(async () => {
  stub = await startLookerStub()
  const brokers = inject('kafkaBrokers')
  await createTopics(brokers)
  ingress = await startIngress({
    brokers,
    redisUrl: inject('redisUrl'),
    lookerHosts: stub.origin,
    env: { VIEWER_TOKEN, SEND_HISTORY_SECRET: HISTORY_SECRET },
  })
  const look = {
    fields: { dimensions: [{ name: 'u.id', tags: ['user_id'] }] },
    data: [{ 'u.id': { value: 'a' } }],
  }
  const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
    type: 'query',
    scheduled_plan: { download_url: stub.route('/http-look', { kind: 'body', body: JSON.stringify(look) }) },
  })
  sendId = (answer.json.looker as { send_id: string }).send_id
  await recordRowFailures(
    ingress.redis,
    sendId,
    [
      {
        destination: 'segment',
        row: 1,
        stage: 'failed',
        code: 'http_400',
        reason: '=HYPERLINK("http://evil.example") <script>alert(1)</script>',
        identity: { email: '<b>x</b>' },
        at: new Date(),
      },
    ],
    { key: deriveHistoryKey(HISTORY_SECRET) },
  )
}, 120_000)

afterAll(async () => {
  await ingress?.close()
  await stub?.close()
})

describe('send history page over HTTP', () => {
  it('answers 401 with the login form without a token, and for a wrong one', async () => {
    const none = await get('/history', {})
    expect(none.status).toBe(401)
    expect(none.text).toContain('<label for="token">Viewer token</label>')
    const wrong = await get('/history', { authorization: `Bearer ${VIEWER_TOKEN}x` })
    expect(wrong.status).toBe(401)
    const wrongCookie = await get('/history', { cookie: 'lookstream_viewer=9999999999999.' + 'a'.repeat(64) })
    expect(wrongCookie.status).toBe(401)
    const csv = await get(`/history/sends/${sendId}/failures.csv`, {})
    expect(csv.status).toBe(401)
    expect(csv.headers['content-type']).toContain('text/plain')
  })

  it('sends a strict Content-Security-Policy and no-store on every page', async () => {
    for (const path of ['/history', '/history/login', `/history/sends/${sendId}`]) {
      const page = await get(path)
      expect(page.headers['content-security-policy']).toContain("default-src 'none'")
      expect(page.headers['cache-control']).toBe('no-store')
      expect(page.headers['x-content-type-options']).toBe('nosniff')
    }
  })

  it('shows a send whose rows the destination had delivered before as done, not as still delivering', async () => {
    // The ingress accepted the send's one row; no destination service runs in this test, so nothing counted it yet.
    const waiting = await get(`/history/sends/${sendId}`)
    expect(waiting.text).toContain('This send is still running or delivering.')
    // What a destination service counts for a row its dedupe store knew as delivered (the same run sent before).
    await ingress.redis.hincrby(sendRecordKey(sendId), 'already_delivered', 1)
    const done = await get(`/history/sends/${sendId}`)
    expect(done.text).not.toContain('This send is still running or delivering.')
    expect(done.text).toMatch(/1 delivered before \(by an earlier send of the same run: not sent again\)/)
    const record = await request(`${ingress.url}/sends/${sendId}`, {
      headers: { authorization: `Token token="${TOKEN}"` },
    })
    expect(await record.body.json()).toMatchObject({ sendId, accepted: 1, alreadyDelivered: 1 })
  })

  it('escapes row values in HTML and neutralises spreadsheet formulas in the CSV', async () => {
    const page = await get(`/history/sends/${sendId}`)
    expect(page.status).toBe(200)
    expect(page.text).not.toContain('<script>alert(1)</script>')
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(page.text).toContain('&lt;b&gt;x&lt;/b&gt;')
    const csv = await get(`/history/sends/${sendId}/failures.csv`)
    expect(csv.headers['content-disposition']).toBe(`attachment; filename="send-${sendId}-failures.csv"`)
    const lines = csv.text.trim().split('\n')
    expect(lines[1]).toMatch(
      /^1,failed,segment,http_400,"'=HYPERLINK\(""http:\/\/evil\.example""\) <script>alert\(1\)<\/script>",email=<b>x<\/b>,,/,
    )
  })

  it('refuses bad send ids, unknown sends and unknown filter values by name', async () => {
    const bad = await get('/history/sends/a%7Db')
    expect(bad.status).toBe(400)
    expect(bad.text).toContain('a send id is 1 to 128 characters')
    const unknown = await get('/history/sends/00000000-0000-4000-8000-000000000000')
    expect(unknown.status).toBe(404)
    const stage = await get(`/history/sends/${sendId}?stage=lost`)
    expect(stage.text).toContain('Unknown stage &quot;lost&quot;: choose one of rejected, dead-lettered, failed.')
    const csv = await get(`/history/sends/${sendId}/failures.csv?stage=lost`)
    expect(csv.status).toBe(400)
    const before = await get('/history?before=soon')
    expect(before.status).toBe(400)
  })

  it('shows a dry run as such, with its sample payloads escaped', async () => {
    const look = {
      fields: {
        dimensions: [
          { name: 'u.id', tags: ['user_id'] },
          { name: 'u.note', tags: [] },
        ],
      },
      data: [{ 'u.id': { value: 'dry-1' }, 'u.note': { value: '<i>note</i>' } }],
    }
    const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
      type: 'query',
      scheduled_plan: { download_url: stub.route('/http-dry-look', { kind: 'body', body: JSON.stringify(look) }) },
      form_params: { lookstream_run: 'dry_run' },
    })
    const dryId = (answer.json.looker as { send_id: string }).send_id
    const page = await get(`/history/sends/${dryId}`)
    expect(page.text).toContain('Dry run: nothing was sent')
    expect(page.text).toContain('(dry run)')
    expect(page.text).toContain('&quot;userId&quot;:&quot;dry-1&quot;')
    expect(page.text).toContain('&lt;i&gt;note&lt;/i&gt;')
    expect(await ingress.redis.get(`lookstream:send:{${dryId}}:dry-run`)).not.toContain('dry-1')
  })

  it('will not take a viewer token that is an Action Hub token or the Action Hub secret', () => {
    expect(() => new ViewerAuth(TOKEN, SECRET)).toThrow(
      'VIEWER_TOKEN must differ from ACTION_HUB_SECRET and from every Action Hub token',
    )
    expect(() => new ViewerAuth(SECRET, SECRET)).toThrow('VIEWER_TOKEN must differ')
    expect(new ViewerAuth(VIEWER_TOKEN, SECRET).checkToken(TOKEN)).toBe('action-hub-token')
  })
})
