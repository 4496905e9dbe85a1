import { RegistryHeartbeat, SEND_INDEX_KEY } from '@lookstream/events'
import { startRedis, waitFor, type RedisProcess } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createTopics, post, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'
import { renderLook } from './support/looks.ts'

// The ingress offers and accepts a destination only while its service is registered. This file has a
// redis-server of its own: the registry is one key, and other files register every destination in theirs.
let redisServer: RedisProcess
let redis: Redis
let stub: LookerStub
let ingress: Ingress

beforeAll(async () => {
  redisServer = await startRedis()
  redis = new Redis(redisServer.url)
  stub = await startLookerStub()
  const brokers = inject('kafkaBrokers')
  await createTopics(brokers)
  ingress = await startIngress({
    brokers,
    redisUrl: redisServer.url,
    lookerHosts: stub.origin,
    registered: false,
    env: { DESTINATION_REGISTRY_CACHE_MS: '0' },
  })
}, 120_000)

afterAll(async () => {
  await ingress?.close()
  await stub?.close()
  redis?.disconnect()
  await redisServer?.stop()
})

function register(
  destination: string,
  connections: string[],
  intervalMs: number,
  settings?: Record<string, Record<string, string | string[]>>,
): Promise<void> {
  return new RegistryHeartbeat(
    redis,
    {
      destination,
      instance: `test-${destination}`,
      version: '9.9.9',
      connections,
      startedAt: new Date().toISOString(),
      ...(settings === undefined ? {} : { settings }),
    },
    intervalMs,
  ).beat()
}

const look = {
  fields: { dimensions: [{ name: 'users.id', label: 'ID', tags: ['braze_id'] }], measures: [] },
  rows: [{ 'users.id': { value: 'u-1' } }],
}

function execute(name: string, connection: string) {
  return post(`${ingress.url}/actions/${name}/execute`, {
    type: 'query',
    scheduled_plan: { scheduled_plan_id: 'plan-registry', type: 'Look', title: 'Registry' },
    attachment: { data: renderLook(look, 'json_detail'), mimetype: 'application/json' },
    form_params: { connection },
    data: {},
  })
}

async function listed(): Promise<Record<string, { label: string; description: string }>> {
  const answer = await post(`${ingress.url}/`, {})
  const list = answer.json.integrations as { name: string; label: string; description: string }[]
  return Object.fromEntries(list.map((action) => [action.name, action]))
}

describe('the destination registry at the ingress', () => {
  it('marks every action unavailable, answers its form with the reason and refuses execute while nothing runs', async () => {
    const actions = await listed()
    expect(actions.braze!.label).toBe('Braze (unavailable)')
    expect(actions.braze!.description).toBe(
      'Unavailable: no Braze delivery service is running in lookstream (destination "braze" is not registered), so nothing would deliver this send; ask your lookstream operator to start it.',
    )
    expect(actions.segment_identify!.label).toMatch(/\(unavailable\)$/)

    const form = await post(`${ingress.url}/actions/braze/form`, {})
    expect(form.json).toEqual({
      error:
        'Braze is unavailable: no Braze delivery service is running in lookstream (destination "braze" is not registered), so nothing would deliver this send; ask your lookstream operator to start it.',
    })

    const answer = await execute('braze', 'default')
    expect(answer.status).toBe(503)
    expect(answer.json.looker).toEqual({
      success: false,
      message:
        'Nothing was sent: no Braze delivery service is running in lookstream (destination "braze" is not registered), so nothing would deliver this send; ask your lookstream operator to start it.',
    })
    // Refused before the send started: no send record, so nothing was produced for it.
    expect(await redis.zcard(SEND_INDEX_KEY)).toBe(0)
  })

  it('offers a destination once registered, with its connections as the form select, and refuses another connection', async () => {
    await register('braze', ['eu', 'default'], 60_000)
    const actions = await listed()
    expect(actions.braze!.label).toBe('Braze')
    expect(actions.heap!.label).toBe('Heap (unavailable)')

    const form = await post(`${ingress.url}/actions/braze/form`, {})
    const connection = (form.json.fields as { name: string }[]).find((field) => field.name === 'connection')
    expect(connection).toEqual({
      name: 'connection',
      label: 'Connection',
      description: 'Name of the destination connection configured in lookstream (credentials live there).',
      type: 'select',
      default: 'default',
      required: false,
      options: [
        { name: 'default', label: 'default' },
        { name: 'eu', label: 'eu' },
      ],
    })

    const refused = await execute('braze', 'us2')
    expect(refused.status).toBe(503)
    expect(refused.json.looker).toEqual({
      success: false,
      message: 'Nothing was sent: the Braze service has no connection named "us2" (its connections: "default", "eu").',
    })

    const accepted = await execute('braze', 'eu')
    expect(accepted.status).toBe(200)
    expect(accepted.json.looker).toMatchObject({ success: true, rows: { received: 1, accepted: 1, rejected: 0 } })
  })

  it('refuses a Heap send naming an environment its connection does not allow, before producing anything', async () => {
    await register('heap', ['default', 'eu'], 60_000, {
      default: { environment: '4242', environments: ['4242', '5151'] },
      eu: { environment: '777', environments: ['777'] },
    })
    const heapLook = {
      fields: {
        dimensions: [
          { name: 'users.email', label: 'Email' },
          { name: 'users.plan', label: 'Plan' },
        ],
      },
      rows: [{ 'users.email': { value: 'a@example.com' }, 'users.plan': { value: 'annual' } }],
    }
    const send = (formParams: Record<string, string>) =>
      post(`${ingress.url}/actions/heap/execute`, {
        type: 'query',
        scheduled_plan: { scheduled_plan_id: 'plan-heap-env', type: 'Look', title: 'Heap' },
        attachment: { data: renderLook(heapLook, 'json_detail'), mimetype: 'application/json' },
        form_params: { property_type: 'user', heap_field: 'Email', ...formParams },
        data: {},
      })
    const sendsBefore = await redis.zcard('lookstream:sends')
    const refused = await send({ connection: 'eu', env_id: '4242' })
    expect(refused.status).toBe(200)
    expect(refused.json.looker).toEqual({
      success: false,
      message: 'Nothing was sent: Heap environment 4242 is not allowed on connection "eu" (allowed: 777).',
      validation_errors: { env_id: 'Heap environment 4242 is not allowed on connection "eu" (allowed: 777).' },
    })
    expect(await redis.zcard('lookstream:sends')).toBe(sendsBefore)
    const accepted = await send({ connection: 'default', env_id: '5151' })
    expect(accepted.json.looker).toMatchObject({ success: true, rows: { received: 1, accepted: 1, rejected: 0 } })
    const ownEnvironment = await send({ connection: 'eu' })
    expect(ownEnvironment.json.looker).toMatchObject({ success: true })
    await redis.hdel('lookstream:registry', 'heap/test-heap')
  })

  it('withdraws a destination whose replicas stopped beating (three missed heartbeats)', async () => {
    await register('heap', ['default'], 100)
    expect((await listed()).heap!.label).toBe('Heap')
    await waitFor(async () => (await listed()).heap!.label === 'Heap (unavailable)', {
      timeoutMs: 5000,
      message: 'heap withdrawn after its entry expired',
    })
    expect(await redis.hexists('lookstream:registry', 'heap/test-heap')).toBe(0)
  })
})
