import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { type DryRunAnswer, executeLook } from './support/dry-run.ts'
import { createTopics, startIngress, type Ingress } from './support/ingress-harness.ts'
import { startLookerStub, type LookerStub } from './support/looker-stub.ts'

// A Recurly Engage dry run checks rows with the service's own toRow and shows the sample as the file would hold
// it: the header line and the row's line, as text.

let stub: LookerStub
let ingress: Ingress

beforeAll(async () => {
  stub = await startLookerStub()
  await createTopics(inject('kafkaBrokers'))
  ingress = await startIngress({
    brokers: inject('kafkaBrokers'),
    redisUrl: inject('redisUrl'),
    lookerHosts: stub.origin,
  })
}, 60_000)

afterAll(async () => {
  await ingress?.close()
  await stub?.close()
})

describe('dry run of a Recurly Engage send', () => {
  it("reports Recurly Engage's checks and the CSV lines the file would hold", async () => {
    const look = {
      ran_at: '2026-11-20T06:00:00+00:00',
      fields: {
        dimensions: [
          { name: 'c.id', label: 'Customer', tags: ['user_id'] },
          { name: 'c.plan', label: 'Plan' },
          { name: 'c.note', label: 'Note' },
        ],
      },
      data: [
        { 'c.id': { value: 'c-1' }, 'c.plan': { value: 'gold' }, 'c.note': { value: 'a, "quoted" note' } },
        { 'c.id': { value: null }, 'c.plan': { value: 'silver' }, 'c.note': { value: null } },
        { 'c.id': { value: 'c-3' }, 'c.plan': { value: 'bronze' }, 'c.note': { value: null } },
      ],
    }
    const dry: DryRunAnswer = await executeLook(
      ingress,
      'recurly_engage',
      stub.route('/recurly-dry', { kind: 'body', body: JSON.stringify(look) }),
      { lookstream_run: 'dry_run' },
    )
    expect(dry.rows).toEqual({ received: 3, accepted: 2, rejected: 1 })
    expect(dry.dry_run!.checks).toEqual([
      'canonical message schema (decodeMessage)',
      "Recurly Engage's rules (services/recurly-engage)",
    ])
    expect(dry.dry_run!.refused_rows).toBe(0)
    expect(dry.dry_run!.sample_payloads).toEqual([
      'user_id,Plan,Note\r\nc-1,gold,"a, ""quoted"" note"\r\n',
      'user_id,Plan,Note\r\nc-3,bronze,\r\n',
    ])
  })
})
