import { DESTINATIONS, INTEGRATION_KEYS, integrationOptions, type CanonicalMessage } from '@lookstream/events'
import { describe, expect, it } from 'vitest'
import { connectionFor, routeRecord, type InboundRecord } from '../src/route-record.ts'

const valid = {
  type: 'identify',
  messageId: 'm-1',
  userId: 'u-1',
  traits: { plan: 'annual' },
  timestamp: '2026-11-22T06:00:00Z',
  integrations: { All: false, Segment: { connection: 'eu' } },
}

function record(value: unknown, headers: Record<string, string | undefined> = {}): InboundRecord {
  return {
    topic: 'lookstream.identify.v1',
    partition: 0,
    offset: '0',
    key: null,
    value: typeof value === 'string' ? Buffer.from(value) : Buffer.from(JSON.stringify(value)),
    headers,
    timestamp: '0',
  }
}

describe('routeRecord', () => {
  it('skips a message whose routing header names other destinations, without parsing it', () => {
    expect(routeRecord(record('not json at all', { 'lookstream-destinations': 'braze,heap' }), 'segment')).toEqual({
      kind: 'skip',
    })
  })

  it('delivers a message routed to it, with the connection and the send id', () => {
    const route = routeRecord(
      record(valid, { 'lookstream-destinations': 'segment', 'lookstream-send-id': 's-9' }),
      'segment',
    )
    expect(route).toMatchObject({ kind: 'deliver', connection: 'eu', sendId: 's-9' })
  })

  it('without a header applies Segment integrations semantics', () => {
    const forBraze = { ...valid, integrations: { All: false, Braze: true } }
    expect(routeRecord(record(forBraze), 'segment')).toEqual({ kind: 'skip' })
    const allButBraze = { ...valid, integrations: { Braze: false } }
    expect(routeRecord(record(allButBraze), 'segment')).toMatchObject({ kind: 'deliver', connection: 'default' })
    const segmentOff = { ...valid, integrations: { Segment: false } }
    expect(routeRecord(record(segmentOff), 'segment')).toEqual({ kind: 'skip' })
  })

  it('dead-letters an invalid message with the reason', () => {
    const route = routeRecord(record({ ...valid, messageId: undefined }), 'segment')
    expect(route.kind).toBe('invalid')
    expect(route.kind === 'invalid' && route.reason).toMatch(/messageId/)
    const garbage = routeRecord(record('{oops', { 'lookstream-destinations': 'segment' }), 'segment')
    expect(garbage.kind === 'invalid' && garbage.reason).toMatch(/not valid JSON/)
  })

  it('connectionFor answers what integrationOptions answers, for every destination and setting', () => {
    const settings = [undefined, true, false, {}, { connection: 'eu' }] as const
    let compared = 0
    for (const all of [undefined, true, false]) {
      for (const setting of settings) {
        for (const other of settings) {
          for (const destination of DESTINATIONS) {
            const integrations: Record<string, unknown> = {}
            if (all !== undefined) integrations.All = all
            if (setting !== undefined) integrations[INTEGRATION_KEYS[destination]] = setting
            const neighbour = DESTINATIONS.find((id) => id !== destination)!
            if (other !== undefined) integrations[INTEGRATION_KEYS[neighbour]] = other
            const message = { ...valid, integrations } as CanonicalMessage
            expect(connectionFor(message, destination)).toBe(integrationOptions(message, destination)?.connection)
            compared++
          }
        }
      }
    }
    expect(compared).toBe(3 * 5 * 5 * DESTINATIONS.length)
  })

  it('answers from the routing header of each record, also when consecutive records differ', () => {
    const forSegment = record(valid, { 'lookstream-destinations': 'segment' })
    const forBraze = record('not json', { 'lookstream-destinations': 'braze' })
    expect(routeRecord(forSegment, 'segment').kind).toBe('deliver')
    expect(routeRecord(forBraze, 'segment').kind).toBe('skip')
    expect(routeRecord(forBraze, 'braze').kind).toBe('invalid')
    expect(routeRecord(forSegment, 'segment').kind).toBe('deliver')
  })
})
