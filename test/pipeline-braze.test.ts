import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { startBrazeSimulator, type BrazeSimulator } from '@lookstream/simulators'
import { spawnService, waitFor, type SpawnedService } from '@lookstream/testing'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LOOK_TAIL, lookHead, type LookField } from './support/looks.ts'
import { metricSum, startPipeline, type Pipeline } from './support/pipeline.ts'

// Looker execute of the braze action → ingress (process) → local-kafka (process) → braze service (process) →
// Braze simulator. The same pipeline harness as the Segment tests; the Braze simulator and the braze service are
// started here.

const BRAZE_MAIN = fileURLToPath(new URL('../services/braze/src/main.ts', import.meta.url))
const API_KEY = 'pipeline-braze-api-key'

let pipeline: Pipeline
let simulator: BrazeSimulator
let service: SpawnedService | undefined

beforeAll(async () => {
  pipeline = await startPipeline()
  simulator = await startBrazeSimulator({ apiKeys: [API_KEY], rateLimit: null, maxItems: 20_000 })
}, 120_000)

afterAll(async () => {
  await service?.stop('SIGTERM', 20_000)
  await simulator?.close()
  await pipeline?.stop()
}, 60_000)

function startBraze(): Promise<SpawnedService> {
  return spawnService(
    BRAZE_MAIN,
    {
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: pipeline.kafka.brokers,
      REDIS_URL: pipeline.redis.url,
      BRAZE_API_KEY: API_KEY,
      BRAZE_REST_ENDPOINT: simulator.url,
      BRAZE_ALLOWED_HOSTS: new URL(simulator.url).host,
      BRAZE_CONNECTIONS: JSON.stringify({ eu: { apiKey: API_KEY, restEndpoint: simulator.url } }),
      DELIVERY_BACKOFF_BASE_MS: '50',
      DELIVERY_BACKOFF_MAX_MS: '500',
      DELIVERY_REGISTRY_HEARTBEAT_MS: '500',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '500',
      SHUTDOWN_TIMEOUT_MS: '15000',
    },
    { readyTimeoutMs: 60_000 },
  )
}

const BRAZE_FIELDS: { dimensions: LookField[]; measures: LookField[] } = {
  dimensions: [
    { name: 'users.id', label: 'Users ID', view: 'users', tags: ['braze_id'], type: 'string' },
    { name: 'users.first_name', label: 'First Name', view: 'users', tags: ['braze[first_name]'], type: 'string' },
    { name: 'users.plan', label: 'Plan', view: 'users', tags: ['braze[Plan Tier]'], type: 'string' },
    { name: 'users.note', label: 'Note', view: 'users', tags: [], type: 'string' },
  ],
  measures: [
    { name: 'orders.count', label: 'Orders', view: 'orders', tags: ['braze[orders]'], measure: true, type: 'count' },
  ],
}

interface BrazeRow {
  id: string | null
  firstName: string | null
  plan: string
  orders: number
}

function brazeRow(prefix: string, index: number, missingId: readonly number[] = []): BrazeRow {
  return {
    id: missingId.includes(index) ? null : `${prefix}-${index}`,
    firstName: index % 4 === 0 ? null : `Name ${index}`,
    plan: index % 3 === 0 ? 'annual' : 'monthly',
    orders: index % 7,
  }
}

function rowJson(row: BrazeRow): string {
  return JSON.stringify({
    'users.id': { value: row.id },
    'users.first_name': { value: row.firstName },
    'users.plan': { value: row.plan },
    'users.note': { value: 'not tagged' },
    'orders.count': { value: row.orders },
  })
}

/** The attributes object the seed's action sends for a row (null cells skipped, the default). */
function expectedBody(row: BrazeRow, updateExistingOnly: boolean, label = 'LOOKER_EXPORT'): Record<string, unknown> {
  return {
    external_id: row.id,
    _update_existing_only: updateExistingOnly,
    looker_export: { add: [label] },
    ...(row.firstName === null ? {} : { first_name: row.firstName }),
    'Plan Tier': row.plan,
    orders: row.orders,
  }
}

function brazeLook(prefix: string, rows: number, missingId: readonly number[] = []) {
  return {
    head: lookHead('2026-11-22T06:00:00+00:00', BRAZE_FIELDS),
    rows,
    row: (i: number) => rowJson(brazeRow(prefix, i, missingId)),
    tail: LOOK_TAIL,
  }
}

async function hub(path: string, body: unknown = {}): Promise<Record<string, unknown>> {
  const res = await request(`${pipeline.ingress.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Token token="${pipeline.token}"`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return (await res.body.json()) as Record<string, unknown>
}

/** Accepted attributes objects whose external_id starts with `prefix-`, by external_id. */
function acceptedFor(prefix: string): Map<string, Record<string, unknown>[]> {
  const byId = new Map<string, Record<string, unknown>[]>()
  for (const accepted of simulator.state.accepted.toArray()) {
    const item = accepted.item as Record<string, unknown>
    const id = item.external_id
    if (typeof id === 'string' && id.startsWith(`${prefix}-`)) byId.set(id, [...(byId.get(id) ?? []), item])
  }
  return byId
}

function acceptedIdsFor(prefix: string): number {
  let n = 0
  for (const id of simulator.state.acceptedIds.keys()) if (id.startsWith(`external_id:${prefix}-`)) n++
  return n
}

function prefix(): string {
  return `b${randomUUID().slice(0, 8)}`
}

describe('pipeline: Looker execute of the braze action to the Braze simulator', () => {
  it('refuses the braze action while no braze service runs; once it runs, offers it with its connections', async () => {
    const p = prefix()
    const refused = await pipeline.execute({
      look: brazeLook(p, 10),
      mode: 'streamed',
      scheduledPlanId: 9100,
      action: 'braze',
    })
    expect(refused.looker.success).toBe(false)
    expect(refused.looker.message).toMatch(/^Nothing was sent: no Braze delivery service is running in lookstream/)

    service = await startBraze()
    await waitFor(
      async () => {
        const list = (await hub('/')).integrations as { name: string; label: string }[]
        return list.find((action) => action.name === 'braze')?.label === 'Braze'
      },
      { timeoutMs: 10_000, message: 'the braze action offered' },
    )
    const form = (await hub('/actions/braze/form')).fields as { name: string; options?: { name: string }[] }[]
    expect(form.find((field) => field.name === 'connection')?.options?.map((o) => o.name)).toEqual(['default', 'eu'])
    expect(form.map((field) => field.name)).toEqual([
      'connection',
      'braze_key',
      'braze_segment',
      'braze_update_existing_only',
      'braze_null_values',
      'lookstream_run',
      'lookstream_rows',
    ])
    expect(simulator.state.counters.requests).toBe(0)
  }, 120_000)

  it("a streamed execute updates every existing user once in the seed's body shape; executing the same run again delivers nothing new", async () => {
    service ??= await startBraze()
    const p = prefix()
    const total = 2000
    const missingId = [17, 1500]
    simulator.profiles.seed(
      Array.from({ length: total }, (_, i) => ({ external_id: `${p}-${i}`, attributes: { first_name: 'Old' } })),
    )
    const look = brazeLook(p, total, missingId)
    const first = await pipeline.execute({ look, mode: 'streamed', scheduledPlanId: 9101, action: 'braze' })
    // Rows the ingress refused make the send a partial one for Looker, with the reasons.
    expect(first.looker).toMatchObject({ success: false, rows: { received: total, accepted: total - 2, rejected: 2 } })
    expect(first.looker.rejected_rows).toEqual([
      { row: 18, reason: 'row has no braze_id value (field users.id)' },
      { row: 1501, reason: 'row has no braze_id value (field users.id)' },
    ])
    await waitFor(() => acceptedIdsFor(p) === total - 2, { timeoutMs: 60_000, message: `${total - 2} users updated` })

    const accepted = acceptedFor(p)
    for (let i = 0; i < total; i++) {
      const row = brazeRow(p, i, missingId)
      if (row.id === null) continue
      expect(accepted.get(row.id), `row ${i}`).toEqual([expectedBody(row, true)])
      expect(simulator.profiles.find({ kind: 'external_id', value: row.id })?.attributes).toEqual({
        first_name: row.firstName ?? 'Old',
        'Plan Tier': row.plan,
        orders: row.orders,
        looker_export: ['LOOKER_EXPORT'],
      })
    }

    // Looker runs the same schedule again (same plan, same ran_at): the same message ids, all skipped.
    const requests = simulator.state.counters.requests
    const skipped = await metricSum(service, 'lookstream_destination_duplicates_skipped_total')
    const again = await pipeline.execute({ look, mode: 'streamed', scheduledPlanId: 9101, action: 'braze' })
    expect(again.looker.rows).toEqual({ received: total, accepted: total - 2, rejected: 2 })
    await waitFor(
      async () => (await metricSum(service!, 'lookstream_destination_duplicates_skipped_total')) - skipped >= total - 2,
      { timeoutMs: 60_000, message: 'the braze service to skip the re-sent rows' },
    )
    expect(simulator.state.counters.requests).toBe(requests)
    expect([...acceptedFor(p).values()].every((bodies) => bodies.length === 1)).toBe(true)
    // The second send is done, not "still delivering": its rows were delivered before.
    await waitFor(async () => (await pipeline.getSend(again.looker.send_id!)).alreadyDelivered === total - 2, {
      timeoutMs: 30_000,
      message: 'already_delivered in the second send record',
    })
  }, 180_000)

  // The 250,000- and 1,000,000-row sends are in bench/destinations/pipeline.ts (about two minutes for 250,000 on the shared machine).
  it('a 20,000-row send arrives whole, each row once (users created, as the form allows)', async () => {
    service ??= await startBraze()
    const p = prefix()
    const total = 20_000
    const before = simulator.state.counters.accepted
    const sent = await pipeline.execute({
      look: brazeLook(p, total),
      mode: 'streamed',
      scheduledPlanId: 9102,
      action: 'braze',
      formParams: { braze_update_existing_only: 'no', braze_segment: 'BIG_SEND' },
    })
    expect(sent.looker).toMatchObject({ success: true, rows: { received: total, accepted: total, rejected: 0 } })
    await waitFor(() => acceptedIdsFor(p) === total, { timeoutMs: 120_000, message: `${total} users created` })
    expect(simulator.state.counters.accepted - before).toBe(total)
    for (const i of [0, 1, 4, 9_999, 19_999]) {
      const row = brazeRow(p, i)
      expect(simulator.profiles.find({ kind: 'external_id', value: row.id! })?.attributes).toEqual({
        ...(row.firstName === null ? {} : { first_name: row.firstName }),
        'Plan Tier': row.plan,
        orders: row.orders,
        looker_export: ['BIG_SEND'],
      })
    }
  }, 180_000)
})
