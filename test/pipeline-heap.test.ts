import { startHeapSimulator, type HeapSimulator } from '@lookstream/simulators'
import { spawnService, waitFor, type SpawnedService } from '@lookstream/testing'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lookHead, LOOK_TAIL } from './support/looks.ts'
import { startPipeline, type Pipeline } from './support/pipeline.ts'

// Looker execute of the heap action → ingress (process) → local-kafka (process) → heap service (process) → Heap
// simulator: user and account properties, a re-executed run, and the three setup errors that end a send.

const HEAP_MAIN = fileURLToPath(new URL('../services/heap/src/main.ts', import.meta.url))
const APP_ID = '4242'
const OTHER_APP_ID = '5151'

let pipeline: Pipeline
let simulator: HeapSimulator
let service: SpawnedService

const FIELDS = {
  dimensions: [
    { name: 'users.email', label: 'Users Email', view: 'users', tags: [], type: 'string' },
    { name: 'users.plan', label: 'Users Plan', view: 'users', tags: [], type: 'string' },
    { name: 'users.vip', label: 'Users VIP', view: 'users', tags: [], type: 'yesno' },
    { name: 'companies.name', label: 'Account', view: 'companies', tags: [], type: 'string' },
  ],
  measures: [
    { name: 'orders.total', label: 'Orders Total', view: 'orders', tags: [], measure: true, is_numeric: true },
  ],
}

interface Row {
  email: string
  plan: string | null
  vip: boolean
  account: string
  total: number
}

function look(prefix: string, count: number, ranAt: string): { body: string; rows: Row[] } {
  const rows = Array.from({ length: count }, (_, i) => ({
    email: `${prefix}-${i}@example.com`,
    plan: i % 5 === 0 ? null : i % 2 === 0 ? 'annual' : 'monthly',
    vip: i % 3 === 0,
    account: `${prefix}-company-${i % 7}`,
    total: i % 4 === 0 ? 0 : i * 2.5,
  }))
  const data = rows.map((row) =>
    JSON.stringify({
      'users.email': { value: row.email },
      'users.plan': { value: row.plan },
      'users.vip': { value: row.vip },
      'companies.name': { value: row.account },
      'orders.total': { value: row.total },
    }),
  )
  return { body: lookHead(ranAt, FIELDS) + data.join(',') + LOOK_TAIL, rows }
}

beforeAll(async () => {
  pipeline = await startPipeline({ ingressEnv: { DESTINATION_REGISTRY_CACHE_MS: '0' } })
  simulator = await startHeapSimulator({ appIds: [APP_ID, OTHER_APP_ID], maxItems: 20_000 })
  service = await spawnService(
    HEAP_MAIN,
    {
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: pipeline.kafka.brokers,
      REDIS_URL: pipeline.redis.url,
      HEAP_APP_ID: APP_ID,
      HEAP_ALLOWED_APP_IDS: OTHER_APP_ID,
      HEAP_API_URL: simulator.url,
      // The simulator enforces Heap's 15,000 items/min per app; the service paces at its own default under it.
      DELIVERY_REGISTRY_HEARTBEAT_MS: '500',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '500',
    },
    { readyTimeoutMs: 60_000 },
  )
}, 120_000)

afterAll(async () => {
  await service?.stop('SIGTERM', 15_000)
  await simulator?.close()
  await pipeline?.stop()
}, 60_000)

function updates(kind: 'user' | 'account', prefix: string, appId = APP_ID): Map<string, number> {
  const start = `${kind}:${appId}:${prefix}-`
  return new Map([...simulator.updateCounts].filter(([key]) => key.startsWith(start)))
}

describe('pipeline: Looker execute of the heap action to the Heap simulator', () => {
  it('user properties: every row reaches add_user_properties once, named by column label; re-executing sends nothing new', async () => {
    const prefix = `h${randomUUID().slice(0, 8)}`
    const { body, rows } = look(prefix, 400, '2026-11-22T06:00:00Z')
    const send = () =>
      pipeline.execute({
        look: body,
        mode: 'streamed',
        scheduledPlanId: 9101,
        action: 'heap',
        formParams: { property_type: 'user', heap_field: 'Users Email' },
      })
    const first = await send()
    expect(first.looker).toMatchObject({ success: true, rows: { received: 400, accepted: 400, rejected: 0 } })
    await waitFor(() => updates('user', prefix).size === 400, { timeoutMs: 60_000, message: '400 users updated' })
    for (const row of rows) {
      const expected: Record<string, unknown> = {
        'Users VIP': row.vip ? 'true' : 'false',
        Account: row.account,
        'Orders Total': row.total,
      }
      if (row.plan !== null) expected['Users Plan'] = row.plan
      expect(simulator.users.get(`${APP_ID}:${row.email}`), row.email).toEqual(expected)
    }
    expect([...updates('user', prefix).values()].every((n) => n === 1)).toBe(true)
    const paths = new Set(simulator.state.requests.toArray().map((r) => r.path))
    expect(paths).toEqual(new Set(['/api/add_user_properties']))

    const requestsBefore = simulator.state.counters.requests
    const again = await send()
    expect(again.looker).toMatchObject({ success: true, rows: { received: 400, accepted: 400, rejected: 0 } })
    // The re-executed run carries the same messageIds: the service skips them all, so nothing reaches Heap.
    await waitFor(
      async () => {
        const metrics = await (await fetch(`${service.url}/metrics`)).text()
        const skipped = /^lookstream_destination_duplicates_skipped_total\{[^}]*\} (\d+)/m.exec(metrics)
        return skipped !== null && Number(skipped[1]) >= 400
      },
      { timeoutMs: 60_000, message: 'the re-sent rows skipped' },
    )
    expect(simulator.state.counters.requests).toBe(requestsBefore)
    expect([...updates('user', prefix).values()].every((n) => n === 1)).toBe(true)
  }, 180_000)

  it('account properties in the environment the send names go to add_account_properties once per row', async () => {
    const prefix = `a${randomUUID().slice(0, 8)}`
    const accounts = Array.from({ length: 50 }, (_, i) => ({
      'companies.name': { value: `${prefix}-${i}` },
      'users.plan': { value: i % 2 === 0 ? 'enterprise' : 'team' },
    }))
    const fields = { dimensions: [FIELDS.dimensions[3], FIELDS.dimensions[1]], measures: [] }
    const body = lookHead('2026-11-22T07:00:00Z', fields) + accounts.map((a) => JSON.stringify(a)).join(',') + LOOK_TAIL
    const result = await pipeline.execute({
      look: body,
      mode: 'pushed',
      scheduledPlanId: 9102,
      action: 'heap',
      formParams: { property_type: 'account', heap_field: 'Account', env_id: OTHER_APP_ID },
    })
    expect(result.looker).toMatchObject({ success: true, rows: { received: 50, accepted: 50, rejected: 0 } })
    await waitFor(() => updates('account', prefix, OTHER_APP_ID).size === 50, {
      timeoutMs: 60_000,
      message: '50 accounts updated',
    })
    expect(simulator.accounts.get(`${OTHER_APP_ID}:${prefix}-3`)).toEqual({ 'Users Plan': 'team' })
    expect(updates('account', prefix, APP_ID).size).toBe(0)
  }, 120_000)

  it('a wrong environment, a missing join-key column and an unknown property type each end the send with a precise message, nothing produced', async () => {
    const prefix = `x${randomUUID().slice(0, 8)}`
    const { body } = look(prefix, 20, '2026-11-22T08:00:00Z')
    const execute = (formParams: Record<string, string>) =>
      pipeline.execute({ look: body, mode: 'pushed', scheduledPlanId: 9103, action: 'heap', formParams })
    const requestsBefore = simulator.state.counters.requests

    const wrongEnvironment = await execute({ property_type: 'user', heap_field: 'Users Email', env_id: '999' })
    expect(wrongEnvironment.looker).toMatchObject({
      success: false,
      message: `Nothing was sent: Heap environment 999 is not allowed on connection "default" (allowed: ${APP_ID}, ${OTHER_APP_ID}).`,
    })

    const missingColumn = await execute({ property_type: 'user', heap_field: 'Users Phone' })
    expect(missingColumn.looker.success).toBe(false)
    expect(missingColumn.looker.message).toMatch(/Heap field \(Users Phone\) is missing in the query result/)
    expect(missingColumn.looker.rows ?? { accepted: 0 }).toMatchObject({ accepted: 0 })

    const unknownType = await execute({ property_type: 'event', heap_field: 'Users Email' })
    expect(unknownType.looker).toMatchObject({ success: false, message: 'Property Type must be user or account.' })

    const topic = await pipeline.readTopic('lookstream.identify.v1')
    expect(topic.filter((record) => record.value?.includes(prefix))).toHaveLength(0)
    expect(simulator.state.counters.requests).toBe(requestsBefore)
  }, 120_000)
})
