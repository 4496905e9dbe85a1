import { serviceEnv, startDeliveryStack, type DeliveryStack } from '@lookstream/delivery-testing'
import { runDestination, type RunningDestination } from '@lookstream/destination'
import { heap } from '@lookstream/heap'
import { startHeapSimulator, type HeapSimulator } from '@lookstream/simulators'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executeDryRun, executeLook, expectRealSendLikeDryRun, type DryRunAnswer } from './support/dry-run.ts'
import { createTopics, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'

// A Heap dry run checks every row with the heap service's own mapping (toHeapItem), on the connection rebuilt from
// the environments the service announced in the registry, and produces nothing; the real send of the same Look
// through the heap service and the Heap simulator then reports the same counts and the same reasons, row by row,
// and delivers the sampled payload as it was shown.

const HISTORY_SECRET = 'dry-run-heap-history-secret'
const ROWS = 3000
const APP_ID = '4242'
const OTHER_APP_ID = '5151'
const LONG_IDENTITY = `${'x'.repeat(300)}@example.com`
const DEEP = 12

function nested(depth: number): unknown {
  return depth === 0 ? 'bottom' : { level: nested(depth - 1) }
}

const REASONS = {
  identity: `the identity is ${LONG_IDENTITY.length} characters; Heap takes at most 255`,
  long: 'property "Users Profile.bio" is 1100 characters; Heap takes fewer than 1024 (or send with long values truncated)',
  deep: `property "Users Profile${'.level'.repeat(10)}" is nested more than 10 levels deep`,
}

function heapLook(): { text: string; rejected: number[]; refused: { row: number; reason: string }[] } {
  const rejected: number[] = []
  const refused: { row: number; reason: string }[] = []
  const rows: unknown[] = []
  for (let row = 1; row <= ROWS; row++) {
    let email: string | null = `u-${row}@example.com`
    let profile: unknown = { country: row % 3 === 0 ? 'FR' : 'DE' }
    if (row % 97 === 0) {
      email = null
      rejected.push(row)
    } else if (row % 101 === 0) {
      email = LONG_IDENTITY
      refused.push({ row, reason: REASONS.identity })
    } else if (row % 103 === 0) {
      profile = { bio: 'b'.repeat(1100) }
      refused.push({ row, reason: REASONS.long })
    } else if (row % 107 === 0) {
      profile = nested(DEEP)
      refused.push({ row, reason: REASONS.deep })
    }
    rows.push({
      'users.email': { value: email },
      'users.plan': { value: row % 2 === 0 ? 'annual' : 'monthly' },
      'users.profile': { value: profile },
    })
  }
  const fields = {
    dimensions: [
      { name: 'users.email', label: 'Users Email' },
      { name: 'users.plan', label: 'Users Plan' },
      { name: 'users.profile', label: 'Users Profile' },
    ],
  }
  return { text: JSON.stringify({ ran_at: '2026-11-20T06:00:00+00:00', fields, data: rows }), rejected, refused }
}

const FORM = { heap_field: 'Users Email', property_type: 'user', long_values: 'reject' }
let stack: DeliveryStack<HeapSimulator>
let stub: LookerStub
let ingress: Ingress
let service: RunningDestination
const look = heapLook()

beforeAll(async () => {
  stack = await startDeliveryStack({
    simulator: () =>
      startHeapSimulator({
        appIds: [APP_ID, OTHER_APP_ID],
        rateLimits: { identityRequests: null, identityEvents: null, appEvents: null },
        maxItems: 2 * ROWS,
      }),
  })
  await createTopics(stack.kafka.brokers)
  stub = await startLookerStub()
  ingress = await startIngress({
    brokers: stack.kafka.brokers,
    redisUrl: stack.redis.url,
    lookerHosts: stub.origin,
    // Only the heap service registers, with the environments it announces for its connections.
    registered: false,
    env: {
      SEND_HISTORY_SECRET: HISTORY_SECRET,
      VIEWER_TOKEN: 'viewer-token-dry-run-heap-0123456789abcdef',
    },
  })
  service = await runDestination(heap, {
    env: serviceEnv(stack, {
      HEAP_APP_ID: APP_ID,
      HEAP_ALLOWED_APP_IDS: OTHER_APP_ID,
      HEAP_API_URL: stack.simulator.url,
      HEAP_ITEMS_PER_MINUTE: '6000000',
      HEAP_IDENTITY_ITEMS_PER_MINUTE: '600000',
      SEND_HISTORY_SECRET: HISTORY_SECRET,
    }),
  })
}, 120_000)

afterAll(async () => {
  await service?.close()
  await ingress?.close()
  await stub?.close()
  await stack?.stop()
})

describe('dry run of a Heap send', () => {
  let dry: DryRunAnswer

  it("produces nothing and reports the rows Heap's own rules refuse, on the connection's environments", async () => {
    dry = await executeDryRun(ingress, stack, 'heap', stub.route('/heap-dry', { kind: 'body', body: look.text }), FORM)

    expect(dry.rows).toEqual({ received: ROWS, accepted: ROWS - look.rejected.length, rejected: look.rejected.length })
    expect(dry.rejected_rows.map((r) => r.row)).toEqual(look.rejected.slice(0, 20))
    expect(dry.rejected_rows[0]!.reason).toBe('join key Users Email is empty')
    expect(dry.success).toBe(false)
    expect(dry.dry_run!.checks).toEqual([
      'canonical message schema (decodeMessage)',
      `Heap's rules (services/heap; connection "default", environments ${APP_ID}, ${OTHER_APP_ID})`,
    ])
    expect(dry.dry_run!.refused_rows).toBe(look.refused.length)
    expect(dry.dry_run!.problems).toEqual(
      look.refused.slice(0, 20).map((r) => ({ ...r, code: 'LS_DEST_UNSUPPORTED_VALUE' })),
    )
    expect(new Set(dry.dry_run!.problems.map((p) => p.reason))).toEqual(new Set(Object.values(REASONS)))
    expect(dry.message).toContain(`Heap would refuse ${look.refused.length} of the accepted rows`)

    // The samples are the users[] entries the service would send, exactly.
    expect(dry.dry_run!.sample_payloads.map((s) => JSON.parse(s) as unknown)).toEqual(
      [1, 2, 3].map((row) => ({
        identity: `u-${row}@example.com`,
        properties: {
          'Users Plan': row % 2 === 0 ? 'annual' : 'monthly',
          'Users Profile.country': row % 3 === 0 ? 'FR' : 'DE',
        },
      })),
    )
  }, 120_000)

  it('the real send through the heap service reports the same counts and reasons, and sends the sampled payload', async () => {
    const real = await executeLook(ingress, 'heap', stub.route('/heap-real', { kind: 'body', body: look.text }), FORM)
    await expectRealSendLikeDryRun({
      ingress,
      stack,
      destination: 'heap',
      historySecret: HISTORY_SECRET,
      dry,
      real,
      refused: look.refused,
      rejected: look.rejected.length,
    })

    const sample = JSON.parse(dry.dry_run!.sample_payloads[0]!) as { identity: string }
    const sent = stack.simulator.state.accepted
      .toArray()
      .find((a) => (a.item as { identity?: string }).identity === sample.identity)
    expect(sent?.item).toEqual(sample)
    expect(stack.simulator.users.get(`${APP_ID}:${sample.identity}`)).toEqual(
      (sample as unknown as { properties: unknown }).properties,
    )
  }, 180_000)
})
