import { serviceEnv, startDeliveryStack, type DeliveryStack } from '@lookstream/delivery-testing'
import { runDestination, type RunningDestination } from '@lookstream/destination'
import { segment } from '@lookstream/segment'
import { startSegmentSimulator, type Simulator } from '@lookstream/simulators'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deliveryCounts } from './support/dry-run.ts'
import { AUTH, createTopics, post, startIngress, TOKEN, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'

// The send history page in Debian's chromium (no browser download), driven by playwright-core: a send with
// rows rejected at the ingress and rows dead-lettered by the real segment service (the Segment simulator answers
// 400 with a message for the batches holding them), read through the page and its CSV.
// Screenshots go to .test-results/ at the repository root for review.

const CHROMIUM = '/usr/bin/chromium'
const hasChromium = existsSync(CHROMIUM)
const VIEWER_TOKEN = 'viewer-token-for-the-browser-test-0123456789'
const HISTORY_SECRET = 'history-secret-for-the-browser-test'
const RESULTS = new URL('../../../.test-results/', import.meta.url).pathname
const RAN_AT = '2026-11-20T06:00:00+00:00'
const WRITE_KEY = 'browser-test-write-key'
// Segment refuses the events of users m-4 and m-5, with its message.
const refusal = (user: string) => ({
  type: 'status' as const,
  status: 400,
  body: { message: `traits.tier is not allowed for ${user}` },
  bodyContains: `"userId":"${user}"`,
})

const v = (value: unknown) => ({ value })
const look = {
  ran_at: RAN_AT,
  fields: {
    dimensions: [
      { name: 'members.mail', label: 'Members Mail', tags: ['email'] },
      { name: 'members.uid', label: 'Members UID', tags: ['user_id'] },
      { name: 'members.tier', label: 'Members Tier', tags: [] },
    ],
    measures: [],
  },
  data: [
    { 'members.mail': v('kim@example.net'), 'members.uid': v('m-1'), 'members.tier': v('gold') },
    { 'members.mail': v(null), 'members.uid': v(null), 'members.tier': v('silver') },
    { 'members.mail': v('odd@example.net'), 'members.uid': v({ nested: true }), 'members.tier': v('gold') },
    { 'members.mail': v('ann@example.net'), 'members.uid': v('m-4'), 'members.tier': v('gold') },
    { 'members.mail': v('bob@example.net'), 'members.uid': v('m-5'), 'members.tier': v('bronze') },
    { 'members.mail': v('cy@example.net'), 'members.uid': v('m-6'), 'members.tier': v('gold') },
  ],
}

let stub: LookerStub
let ingress: Ingress
// A Redis and Kafka of its own: the page lists every send in that Redis, and the screenshots should show this
// test's sends only.
let stack: DeliveryStack<Simulator>
let service: RunningDestination
let userDataDir: string
let context: BrowserContext
let sendId: string
let verdict: string

async function screenshot(page: Page, name: string) {
  mkdirSync(RESULTS, { recursive: true })
  await page.screenshot({ path: join(RESULTS, name), fullPage: true })
}

async function signIn(page: Page, token: string) {
  await page.goto(`${ingress.url}/history/login`)
  await page.getByLabel('Viewer token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

describe.skipIf(!hasChromium)(`send history page in chromium (needs ${CHROMIUM}: apt-get install chromium)`, () => {
  beforeAll(async () => {
    stack = await startDeliveryStack({
      simulator: () =>
        startSegmentSimulator({
          writeKeys: [WRITE_KEY],
          rateLimit: null,
          faults: { rules: [refusal('m-4'), refusal('m-5')] },
        }),
    })
    stub = await startLookerStub()
    await createTopics(stack.kafka.brokers)
    ingress = await startIngress({
      brokers: stack.kafka.brokers,
      redisUrl: stack.redis.url,
      lookerHosts: stub.origin,
      registered: false,
      env: { VIEWER_TOKEN, SEND_HISTORY_SECRET: HISTORY_SECRET },
    })
    service = await runDestination(segment, {
      env: serviceEnv(stack, {
        SEGMENT_WRITE_KEY: WRITE_KEY,
        SEGMENT_API_URL: stack.simulator.url,
        SEGMENT_RATE_LIMIT_RPS: '1000',
        SEND_HISTORY_SECRET: HISTORY_SECRET,
      }),
    })
    const answer = await post(`${ingress.url}/actions/segment_identify/execute`, {
      type: 'query',
      scheduled_plan: {
        scheduled_plan_id: 77,
        url: 'https://looker.example.com/looks/42',
        download_url: stub.route('/history-look', { kind: 'body', body: JSON.stringify(look) }),
      },
      form_params: {},
    })
    const looker = answer.json.looker as { send_id: string; message: string; rows: unknown }
    expect(looker.rows).toEqual({ received: 6, accepted: 4, rejected: 2 })
    sendId = looker.send_id
    verdict = looker.message
    // The segment service delivers rows 1 and 6 and dead-letters rows 4 and 5 with Segment's message.
    expect(await deliveryCounts(ingress, { send_id: sendId, rows: { accepted: 4 } })).toEqual({
      delivered: 2,
      deadLettered: 2,
    })
    userDataDir = mkdtempSync(join(tmpdir(), 'lookstream-chromium-'))
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      acceptDownloads: true,
      viewport: { width: 1600, height: 900 },
    })
  }, 120_000)

  afterAll(async () => {
    await context?.close()
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true })
    await service?.close()
    await ingress?.close()
    await stub?.close()
    await stack?.stop()
  })

  it("names the send and the page's URL in Looker's verdict", () => {
    expect(verdict).toContain(`Send id ${sendId}. Rows and reasons: ${ingress.url}/history/sends/${sendId} `)
  })

  it('lists the send with its counts at the ingress and at the destination', async () => {
    const page = await context.newPage()
    await signIn(page, VIEWER_TOKEN)
    await expect.poll(() => page.url()).toBe(`${ingress.url}/history`)
    const row = page.locator('#sends tbody tr', { has: page.locator(`a[href="/history/sends/${sendId}"]`) })
    const cells = await row.locator('td').allInnerTexts()
    // Started, Send, Look/schedule, Action, Connection, Status, Received, Skipped unchanged, Accepted, Rejected,
    // Delivered,
    // Failed (retried), Dead-lettered, Failed rows, Duration
    expect(cells.slice(2, 14).map((c) => c.trim())).toEqual([
      'Look 42, schedule 77',
      'segment_identify',
      'default',
      'partial',
      '6',
      '—',
      '4',
      '2',
      '2',
      '0',
      '2',
      '4',
    ])
    await screenshot(page, 'send-history-list.png')
    await page.close()
  })

  it("shows the send's failed rows with their reasons and identities, filterable, as CSV too", async () => {
    const page = await context.newPage()
    // The link in Looker's message leads straight to the rows.
    await page.goto(`${ingress.url}/history/sends/${sendId}`)
    const table = page.locator('#failures tbody tr')
    await expect.poll(() => table.count()).toBe(4)
    const rows: string[][] = []
    for (const tr of await table.all()) rows.push((await tr.locator('td').allInnerTexts()).map((t) => t.trim()))
    // Listed in the order they were recorded: the service may dead-letter row 5 before row 4.
    const byRow = (a: string[], b: string[]) => Number(a[0]) - Number(b[0])
    expect(rows.map((r) => r.slice(0, 6)).sort(byRow)).toEqual([
      [
        '2',
        'Rejected at the ingress',
        'segment',
        'no_identity',
        'row has no user_id, segment_anonymous_id or email value',
        '—',
      ],
      [
        '3',
        'Rejected at the ingress',
        'segment',
        'bad_identity',
        'user_id field members.uid holds an object',
        'members.mail = odd@example.net',
      ],
      [
        '4',
        'Dead-lettered after retries',
        'segment',
        'LS_DEST_REJECTED',
        'HTTP 400: {"message":"traits.tier is not allowed for m-4"}',
        'userId = m-4',
      ],
      [
        '5',
        'Dead-lettered after retries',
        'segment',
        'LS_DEST_REJECTED',
        'HTTP 400: {"message":"traits.tier is not allowed for m-5"}',
        'userId = m-5',
      ],
    ])
    await screenshot(page, 'send-history-send.png')

    await page.getByLabel('Stage').selectOption('dead-lettered')
    await page.getByRole('button', { name: 'Filter' }).click()
    await expect.poll(() => page.url()).toContain('stage=dead-lettered')
    expect((await page.locator('#failures tbody tr td:first-child').allInnerTexts()).sort()).toEqual(['4', '5'])

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download these rows as CSV' }).click(),
    ])
    const csv = readFileSync(await download.path(), 'utf8')
      .trim()
      .split('\n')
    expect(csv[0]).toBe('row,stage,destination,code,reason,identity,message_id,at')
    const lines = csv.slice(1).sort()
    expect(lines.map((line) => line.split(',').slice(0, 4).join(','))).toEqual([
      '4,dead-lettered,segment,LS_DEST_REJECTED',
      '5,dead-lettered,segment,LS_DEST_REJECTED',
    ])
    expect(lines[0]).toContain('"HTTP 400: {""message"":""traits.tier is not allowed for m-4""}",userId=m-4,')
    await page.close()
  })

  it('shows a running send and updates it in place when it finishes (live progress, no reload)', async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const rows = Array.from({ length: 3000 }, (_, i) =>
      JSON.stringify({ 'members.mail': v(`p${i}@example.net`), 'members.uid': v(`p-${i}`), 'members.tier': v('gold') }),
    )
    const head = `{"ran_at":"${RAN_AT}","fields":${JSON.stringify(look.fields)},"data":[`
    const url = stub.route('/live-look', {
      kind: 'custom',
      async handle(response) {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.write(`${head}${rows.slice(0, 1500).join(',')},`)
        await released
        response.end(`${rows.slice(1500).join(',')}]}`)
      },
    })
    const sending = post(`${ingress.url}/actions/segment_identify/execute`, {
      type: 'query',
      scheduled_plan: { scheduled_plan_id: 78, url: 'https://looker.example.com/looks/43', download_url: url },
    })
    const page = await context.newPage()
    try {
      await signIn(page, VIEWER_TOKEN)
      const row = page.locator('#sends tbody tr', { hasText: 'schedule 78' })
      const status = row.locator('td').nth(5)
      // The send record appears once the execute started; reload until it does.
      await expect
        .poll(
          async () => {
            await page.reload()
            return (await row.count()) === 1 ? status.innerText() : 'absent'
          },
          { timeout: 15_000 },
        )
        .toBe('running')
      await screenshot(page, 'send-history-running.png')
      await page.evaluate('window.__notReloaded = true')
      release()
      expect((await sending).status).toBe(200)
      await expect.poll(() => status.innerText(), { timeout: 15_000 }).toBe('succeeded')
      expect(await row.locator('td').nth(6).innerText()).toBe('3,000')
      expect(await page.evaluate('window.__notReloaded === true')).toBe(true)
      expect(await page.locator('#live-status').innerText()).toMatch(/^Updated at /)
    } finally {
      release()
      await page.close()
    }
  }, 60_000)

  it('reads without JavaScript, every form control has a label, and the keyboard reaches the content', async () => {
    const browser =
      context.browser() ?? (await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] }))
    const noScript = await browser.newContext({ javaScriptEnabled: false })
    try {
      const page = await noScript.newPage()
      await signIn(page, VIEWER_TOKEN)
      await page.goto(`${ingress.url}/history/sends/${sendId}?stage=rejected`)
      expect(await page.locator('#failures tbody tr td:first-child').allInnerTexts()).toEqual(['2', '3'])
      const unlabeled = await page.locator('input, select').evaluateAll((controls) =>
        controls
          .map((c) => c as unknown as { id: string; labels: ArrayLike<unknown> | null })
          .filter((c) => (c.labels?.length ?? 0) === 0)
          .map((c) => c.id),
      )
      expect(unlabeled).toEqual([])
      await page.keyboard.press('Tab')
      expect(await page.locator(':focus').innerText()).toBe('Skip to content')
    } finally {
      await noScript.close()
    }
  })

  it('refuses the Action Hub token, at the login form and as a header', async () => {
    const fresh = await context.browser()!.newContext()
    try {
      const page = await fresh.newPage()
      await signIn(page, TOKEN)
      await expect.poll(() => page.getByRole('alert').innerText()).toContain('This is an Action Hub token')
      await screenshot(page, 'send-history-action-hub-token-refused.png')
      const list = await request(`${ingress.url}/history`, { headers: { authorization: AUTH } })
      expect(list.statusCode).toBe(403)
      expect(await list.body.text()).toContain('This is an Action Hub token')
      const bearer = await request(`${ingress.url}/history/sends/${sendId}/failures.csv`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      })
      expect(bearer.statusCode).toBe(403)
      await bearer.body.dump()
    } finally {
      await fresh.close()
    }
  })

  it('the viewer token and session cannot execute, list actions or read the send API', async () => {
    const cookies = await context.cookies(`${ingress.url}/history`)
    const session = cookies.find((c) => c.name === 'lookstream_viewer')
    expect(session?.httpOnly).toBe(true)
    expect(session?.sameSite).toBe('Strict')
    const attempts = [
      { authorization: `Bearer ${VIEWER_TOKEN}` },
      { authorization: `Token token="${VIEWER_TOKEN}"` },
      { cookie: `lookstream_viewer=${session!.value}` },
    ]
    for (const headers of attempts) {
      for (const [method, path] of [
        ['POST', '/actions/segment_identify/execute'],
        ['POST', '/'],
        ['GET', '/sends'],
        ['GET', `/sends/${sendId}`],
      ] as const) {
        const response = await request(`${ingress.url}${path}`, {
          method,
          headers: { ...headers, 'content-type': 'application/json' },
          ...(method === 'POST' ? { body: '{"type":"query"}' } : {}),
        })
        expect({ path, status: response.statusCode }).toEqual({ path, status: 403 })
        await response.body.dump()
      }
    }
  })
})
