import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { startMparticleSimulator, type Simulator } from '@lookstream/simulators'
import { spawnService, waitFor, type SpawnedService } from '@lookstream/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPipeline, type Pipeline } from './support/pipeline.ts'

// Looker execute → ingress → local-kafka → mparticle service (processes) → mParticle simulator, both data types.

const MPARTICLE_MAIN = fileURLToPath(new URL('../services/mparticle/src/main.ts', import.meta.url))
const KEY = 'pipeline-mparticle-key'
const SECRET = 'pipeline-mparticle-secret'

let pipeline: Pipeline
let simulator: Simulator
let service: SpawnedService

beforeAll(async () => {
  pipeline = await startPipeline()
  simulator = await startMparticleSimulator({ credentials: [{ key: KEY, secret: SECRET }], rateLimit: null })
  service = await spawnService(
    MPARTICLE_MAIN,
    {
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: pipeline.kafka.brokers,
      REDIS_URL: pipeline.redis.url,
      MPARTICLE_API_KEY: KEY,
      MPARTICLE_API_SECRET: SECRET,
      MPARTICLE_API_URL: `${simulator.url}/v2`,
      DELIVERY_REGISTRY_HEARTBEAT_MS: '500',
    },
    { readyTimeoutMs: 60_000 },
  )
}, 120_000)

afterAll(async () => {
  await service?.stop('SIGTERM', 15_000)
  await simulator?.close()
  await pipeline?.stop()
}, 60_000)

const fields = {
  dimensions: [
    { name: 'users.id', label: 'ID', tags: ['mp_customer_id'] },
    { name: 'users.email', label: 'Email', tags: ['mp_email'] },
    { name: 'users.ltv', label: 'LTV', tags: ['mp_user_attribute'] },
    { name: 'orders.event', label: 'Event', tags: ['mp_event_name'] },
    { name: 'orders.kind', label: 'Kind', tags: ['mp_custom_event_type'] },
    { name: 'orders.total', label: 'Total', tags: ['mp_custom_attribute'] },
    { name: 'device.brand', label: 'Brand', tags: ['mp_device_info'] },
    { name: 'device.shoe_size', label: 'Shoe', tags: ['mp_device_info'] },
  ],
  measures: [],
}

interface Row {
  id: string | null
  email: string | null
  kind: string
}

function look(rows: Row[]): string {
  const data = rows.map((row, i) => ({
    'users.id': { value: row.id },
    'users.email': { value: row.email },
    'users.ltv': { value: 100 + i },
    'orders.event': { value: 'Order Completed' },
    'orders.kind': { value: row.kind },
    'orders.total': { value: 9.5 },
    'device.brand': { value: 'Acme' },
    'device.shoe_size': { value: 44 },
  }))
  return JSON.stringify({ fields, data, ran_at: '2026-11-20T06:00:00+00:00' })
}

function acceptedFor(prefix: string): Record<string, unknown>[] {
  return simulator.state.accepted
    .toArray()
    .map((entry) => entry.item as Record<string, unknown> & { user_identities: Record<string, string> })
    .filter((batch) => Object.values(batch.user_identities).some((value) => value.startsWith(prefix)))
}

describe('pipeline: Looker execute to the mParticle simulator', () => {
  it('events: every row once with the seed names, the bad rows rejected with row and reason, skipped device fields named; a re-execute sends nothing new', async () => {
    const p = `m${randomUUID().slice(0, 8)}`
    const rows: Row[] = Array.from({ length: 60 }, (_, i) => ({
      id: i === 5 ? null : `${p}-${i}`,
      email: i === 5 ? null : `${p}-${i}@example.com`,
      kind: i === 9 ? 'purchase' : 'transaction',
    }))
    const form = { data_type: 'event_data', environment: 'production', custom_event_type: 'other' }
    const sent = await pipeline.execute({
      look: look(rows),
      mode: 'streamed',
      scheduledPlanId: 5101,
      action: 'mparticle',
      formParams: form,
    })
    expect(sent.looker.success).toBe(false)
    expect(sent.looker.rows).toEqual({ received: 60, accepted: 59, rejected: 1 })
    expect(sent.looker.rejected_rows).toEqual([{ row: 6, reason: 'row has no mParticle identity value' }])
    expect(sent.looker.message).toContain(
      "Note: not sent: device.shoe_size (tagged mp_device_info, but not one of mParticle's predefined device_info fields).",
    )
    // Row 10's event type is checked against mParticle's enum by the service: the DLQ holds it with the reason.
    await waitFor(() => acceptedFor(p).length === 58, { timeoutMs: 60_000, message: '58 batches accepted' })
    const dlq = (await pipeline.readTopic('lookstream.dlq.mparticle')).filter((r) => r.value?.includes(`${p}-9`))
    expect(dlq.map((r) => r.headers['lookstream-error'])).toEqual([
      'custom_event_type must be one of navigation, location, search, transaction, user_content, user_preference, social, other, media',
    ])
    const first = acceptedFor(p).find(
      (batch) => (batch.user_identities as Record<string, string>).customer_id === `${p}-0`,
    )
    expect(first).toMatchObject({
      environment: 'production',
      schema_version: 2,
      user_identities: { customer_id: `${p}-0`, email: `${p}-0@example.com` },
      user_attributes: { 'looker_users.ltv': 100 },
      device_info: { brand: 'Acme' },
      events: [
        {
          event_type: 'custom_event',
          data: {
            event_name: 'Order Completed',
            custom_event_type: 'transaction',
            custom_attributes: { 'looker_orders.total': 9.5 },
          },
        },
      ],
    })
    const again = await pipeline.execute({
      look: look(rows),
      mode: 'streamed',
      scheduledPlanId: 5101,
      action: 'mparticle',
      formParams: form,
    })
    expect(again.looker.rows).toEqual({ received: 60, accepted: 59, rejected: 1 })
    await waitFor(
      async () => {
        const text = await (await fetch(`${service.url}/metrics`)).text()
        const match = /^lookstream_destination_duplicates_skipped_total\{[^}]*\} (\d+)$/m.exec(text)
        return match !== null && Number(match[1]) >= 58
      },
      { timeoutMs: 30_000, message: 'the re-executed rows skipped as delivered' },
    )
    expect(acceptedFor(p)).toHaveLength(58)
    expect(simulator.state.counters.duplicates).toBe(0)
  }, 120_000)

  it('profiles: every row becomes a profile batch with user attributes and no events', async () => {
    const p = `m${randomUUID().slice(0, 8)}`
    const rows: Row[] = Array.from({ length: 20 }, (_, i) => ({ id: `${p}-${i}`, email: null, kind: 'other' }))
    const sent = await pipeline.execute({
      look: look(rows),
      mode: 'pushed',
      scheduledPlanId: 5102,
      action: 'mparticle',
      formParams: { data_type: 'user_data', environment: 'development', custom_event_type: 'other' },
    })
    expect(sent.looker.rows).toEqual({ received: 20, accepted: 20, rejected: 0 })
    await waitFor(() => acceptedFor(p).length === 20, { timeoutMs: 60_000, message: '20 profiles accepted' })
    const batch = acceptedFor(p).find((b) => (b.user_identities as Record<string, string>).customer_id === `${p}-3`)
    expect(batch).toMatchObject({
      environment: 'development',
      user_identities: { customer_id: `${p}-3` },
      user_attributes: {
        'looker_users.ltv': 103,
        'looker_orders.kind': 'other',
        'looker_orders.total': 9.5,
      },
      events: [],
    })
  }, 120_000)
})
