import { type CanonicalMessage } from '@lookstream/events'
import { describe, expect, it } from 'vitest'
import { destinationCheck, uncheckedReason } from '../src/history/destination-checks.ts'

// The dry run's destination checks when the registry says little: what runs, what does not, and what the report
// says of it. (Sends with announced settings are covered end to end by the dry-run integration tests.)

function identify(traits: Record<string, unknown>, integrations: CanonicalMessage['integrations']): CanonicalMessage {
  return {
    type: 'identify',
    messageId: 'f0e1d2c3-0000-5000-8000-000000000001',
    userId: 'cust_1',
    traits,
    context: { lookstream: { sendId: 's-1', row: 7, action: 'test' } },
    timestamp: '2026-06-01T06:00:00Z',
    integrations,
  }
}

describe('destinationCheck', () => {
  it("Braze without announced limits checks with BrazeConfig's defaults and says so", () => {
    const check = destinationCheck('braze', 'eu', undefined)!
    expect(check.label).toBe(
      `Braze's rules (services/braze; arrays of at most 25 values: the default, connection "eu" announced no limits)`,
    )
    const braze = { All: false, Braze: { connection: 'eu', identifierKey: 'external_id' as const } }
    expect(check.check(identify({ tags: Array.from({ length: 26 }, (_, i) => i) }, braze))).toEqual({
      ok: false,
      reason: `attribute "tags" holds an array of 26 values, over the workspace's 25 (Braze would truncate it)`,
      code: 'LS_DEST_UNSUPPORTED_VALUE',
    })
    expect(check.check(identify({ tags: [1, 2] }, braze))).toMatchObject({ ok: true })
  })

  it('Heap without announced environments is not checked, and the report says why', () => {
    expect(destinationCheck('heap', 'eu', undefined)).toBeUndefined()
    expect(destinationCheck('heap', 'eu', { environment: '111' })).toBeUndefined()
    expect(uncheckedReason('heap', 'eu')).toBe(
      `Heap's rules not checked: connection "eu" announced no environments in the destination registry`,
    )
  })

  it('Heap refuses a row naming an environment the connection does not allow', () => {
    const check = destinationCheck('heap', 'default', { environment: '111', environments: ['111'] })!
    const heap = { All: false, Heap: { connection: 'default', propertyType: 'user' as const, envId: '222' } }
    expect(check.check(identify({ plan: 'gold' }, heap))).toEqual({
      ok: false,
      reason: 'Heap environment 222 is not allowed on connection "default" (allowed: 111)',
      code: 'LS_DEST_UNSUPPORTED_VALUE',
    })
  })

  it("Recurly Engage checks with the service's toRow; the sample is the header line and the row's line", () => {
    const check = destinationCheck('recurly-engage', 'default', undefined)!
    expect(check.label).toBe("Recurly Engage's rules (services/recurly-engage)")
    const recurly = { All: false, 'Recurly Engage': { connection: 'default' } }
    expect(check.check(identify({ plan: 'gold', seats: 3 }, recurly))).toEqual({
      ok: true,
      payload: 'user_id,plan,seats\r\ncust_1,gold,3\r\n',
    })
    expect(check.check(identify({ plan: { tier: 'gold' } }, recurly))).toEqual({
      ok: false,
      reason: 'trait "plan" holds a object; a CSV cell takes text, numbers and booleans',
      code: 'LS_DEST_UNSUPPORTED_VALUE',
    })
  })
})
