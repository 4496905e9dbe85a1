import { braze } from '@lookstream/braze'
import { serviceEnv, startDeliveryStack, type DeliveryStack } from '@lookstream/delivery-testing'
import { runDestination, type RunningDestination } from '@lookstream/destination'
import { startBrazeSimulator, type BrazeSimulator } from '@lookstream/simulators'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executeDryRun, executeLook, expectRealSendLikeDryRun, type DryRunAnswer } from './support/dry-run.ts'
import { createTopics, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'

// A Braze dry run checks every row with the braze service's own mapping (toBrazeItem), on the connection the
// service announced in the registry (here a workspace capping arrays at 10 values, not Braze's default 25), and
// produces nothing; the real send of the same Look through the braze service and the Braze simulator then reports
// the same counts and the same reasons, row by row, and delivers the sampled payload as it was shown.

const HISTORY_SECRET = 'dry-run-braze-history-secret'
const ROWS = 3000
const API_KEY = 'dry-run-braze-api-key'
const ARRAY_LIMIT = 10

const REASONS = {
  long: 'attribute "note" holds a string over 255 characters',
  object: 'attribute "note" holds an object (Braze takes strings, numbers, booleans, dates and arrays of strings)',
  array: `attribute "tags" holds an array of 12 values, over the workspace's ${ARRAY_LIMIT} (Braze would truncate it)`,
}

function brazeLook(): { text: string; rejected: number[]; refused: { row: number; reason: string }[] } {
  const rejected: number[] = []
  const refused: { row: number; reason: string }[] = []
  const rows: unknown[] = []
  for (let row = 1; row <= ROWS; row++) {
    let id: string | null = `u-${row}`
    let note: unknown = `note ${row}`
    let tags: unknown = ['a', `t-${row % 5}`]
    if (row % 97 === 0) {
      id = null
      rejected.push(row)
    } else if (row % 101 === 0) {
      note = 'n'.repeat(300)
      refused.push({ row, reason: REASONS.long })
    } else if (row % 103 === 0) {
      note = { nested: row }
      refused.push({ row, reason: REASONS.object })
    } else if (row % 107 === 0) {
      tags = Array.from({ length: 12 }, (_, i) => `t${i}`)
      refused.push({ row, reason: REASONS.array })
    }
    rows.push({
      'u.id': { value: id },
      'u.plan': { value: row % 2 === 0 ? 'annual' : 'monthly' },
      'u.note': { value: note },
      'u.tags': { value: tags },
    })
  }
  const fields = {
    dimensions: [
      { name: 'u.id', tags: ['braze_id'] },
      { name: 'u.plan', tags: ['braze[plan]'] },
      { name: 'u.note', tags: ['braze[note]'] },
      { name: 'u.tags', tags: ['braze[tags]'] },
    ],
  }
  return { text: JSON.stringify({ ran_at: '2026-11-20T06:00:00+00:00', fields, data: rows }), rejected, refused }
}

const FORM = { braze_update_existing_only: 'no' }
let stack: DeliveryStack<BrazeSimulator>
let stub: LookerStub
let ingress: Ingress
let service: RunningDestination
const look = brazeLook()

beforeAll(async () => {
  stack = await startDeliveryStack({
    simulator: () => startBrazeSimulator({ apiKeys: [API_KEY], rateLimit: null, maxItems: 2 * ROWS }),
  })
  await createTopics(stack.kafka.brokers)
  stub = await startLookerStub()
  ingress = await startIngress({
    brokers: stack.kafka.brokers,
    redisUrl: stack.redis.url,
    lookerHosts: stub.origin,
    // Only the braze service registers, with the settings it announces for its connections.
    registered: false,
    env: {
      SEND_HISTORY_SECRET: HISTORY_SECRET,
      VIEWER_TOKEN: 'viewer-token-dry-run-braze-0123456789abcdef',
    },
  })
  service = await runDestination(braze, {
    env: serviceEnv(stack, {
      BRAZE_API_KEY: API_KEY,
      BRAZE_REST_ENDPOINT: stack.simulator.url,
      BRAZE_ALLOWED_HOSTS: new URL(stack.simulator.url).host,
      BRAZE_MAX_ARRAY_LENGTH: String(ARRAY_LIMIT),
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

describe('dry run of a Braze send', () => {
  let dry: DryRunAnswer

  it("produces nothing and reports the rows Braze's own rules refuse, with the connection's limits", async () => {
    dry = await executeDryRun(
      ingress,
      stack,
      'braze',
      stub.route('/braze-dry', { kind: 'body', body: look.text }),
      FORM,
    )

    expect(dry.rows).toEqual({ received: ROWS, accepted: ROWS - look.rejected.length, rejected: look.rejected.length })
    expect(dry.rejected_rows.map((r) => r.row)).toEqual(look.rejected.slice(0, 20))
    expect(dry.rejected_rows[0]!.reason).toBe('row has no braze_id value (field u.id)')
    expect(dry.success).toBe(false)
    expect(dry.dry_run!.checks).toEqual([
      'canonical message schema (decodeMessage)',
      `Braze's rules (services/braze; connection "default"'s arrays of at most ${ARRAY_LIMIT} values)`,
    ])
    expect(dry.dry_run!.refused_rows).toBe(look.refused.length)
    expect(dry.dry_run!.messages).toBe(ROWS - look.rejected.length)
    expect(dry.dry_run!.problems).toEqual(
      look.refused.slice(0, 20).map((r) => ({ ...r, code: 'LS_DEST_UNSUPPORTED_VALUE' })),
    )
    // Every kind of refusal is among the first problems.
    expect(new Set(dry.dry_run!.problems.map((p) => p.reason))).toEqual(new Set(Object.values(REASONS)))
    expect(dry.message).toContain(`Braze would refuse ${look.refused.length} of the accepted rows`)
    expect(dry.message).toContain(
      `First problems: row 97: row has no braze_id value (field u.id); row 101: Braze would refuse it: ${REASONS.long}`,
    )

    // The samples are the attributes objects the service would put in /users/track, exactly.
    expect(dry.dry_run!.sample_payloads.map((s) => JSON.parse(s) as unknown)).toEqual(
      [1, 2, 3].map((row) => ({
        external_id: `u-${row}`,
        _update_existing_only: false,
        looker_export: { add: ['LOOKER_EXPORT'] },
        plan: row % 2 === 0 ? 'annual' : 'monthly',
        note: `note ${row}`,
        tags: ['a', `t-${row % 5}`],
      })),
    )
  }, 120_000)

  it('the real send through the braze service reports the same counts and reasons, and sends the sampled payload', async () => {
    const real = await executeLook(ingress, 'braze', stub.route('/braze-real', { kind: 'body', body: look.text }), FORM)
    await expectRealSendLikeDryRun({
      ingress,
      stack,
      destination: 'braze',
      historySecret: HISTORY_SECRET,
      dry,
      real,
      refused: look.refused,
      rejected: look.rejected.length,
    })

    const sample = JSON.parse(dry.dry_run!.sample_payloads[0]!) as { external_id: string }
    const sent = stack.simulator.state.accepted
      .toArray()
      .find((a) => (a.item as { external_id?: string }).external_id === sample.external_id)
    expect(sent?.item).toEqual(sample)
  }, 180_000)
})
