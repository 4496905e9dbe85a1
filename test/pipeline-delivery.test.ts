import { randomUUID } from 'node:crypto'
import { waitFor } from '@lookstream/testing'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  accountLook,
  expectedSegmentItem,
  identifyLook,
  identifyRow,
  lookHead,
  LOOK_TAIL,
  rowJson,
  type IdentifyRow,
} from './support/looks.ts'
import { acceptedFor, metricSum, startPipeline, waitForAccepted, type Pipeline } from './support/pipeline.ts'

// Looker execute → ingress (process) → local-kafka (process) → segment service (process) → Segment simulator.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

let pipeline: Pipeline

beforeAll(async () => {
  // A short keep-alive interval, so that a send of a few seconds shows Looker's keep-alive newlines.
  pipeline = await startPipeline({ ingressEnv: { KEEPALIVE_MS: '200' } })
  await pipeline.startSegment()
}, 120_000)

afterEach(() => {
  pipeline.simulator.faults.clear()
})

afterAll(async () => {
  await pipeline?.stop()
}, 60_000)

function prefix(): string {
  return `u${randomUUID().slice(0, 8)}`
}

/** Each accepted row's body, with its messageId checked and set aside. */
function checkBodies(pipeline: Pipeline, prefixText: string, rows: readonly IdentifyRow[], ranAt: string) {
  const accepted = acceptedFor(pipeline.simulator, prefixText)
  const byOwner = new Map(accepted.map((a) => [a.item.userId ?? (a.item.traits?.email as string), a]))
  for (const row of rows) {
    const owner = row.userId ?? row.email!
    const event = byOwner.get(owner)
    expect(event, `row ${row.index} reached the simulator`).toBeDefined()
    const { messageId, anonymousId, ...body } = event!.item
    expect(messageId).toMatch(UUID)
    expect(event!.messageId).toBe(messageId)
    if (row.userId === null) expect(anonymousId, `row ${row.index} has a deterministic anonymousId`).toMatch(UUID)
    else expect(anonymousId).toBeUndefined()
    expect(body, `row ${row.index}`).toEqual(expectedSegmentItem(row, ranAt))
  }
  return accepted
}

async function duplicatesSkipped(): Promise<number> {
  let total = 0
  for (const service of pipeline.segments)
    total += await metricSum(service, 'lookstream_destination_duplicates_skipped_total')
  return total
}

describe('pipeline: Looker execute to the Segment simulator', () => {
  it('a streamed execute delivers exactly the expected bodies, every accepted row exactly once; the same send again delivers nothing new', async () => {
    const p = prefix()
    const look = identifyLook({ prefix: p, rows: 1500, anonymousEvery: 10, rejectRows: [3, 777] })
    const accepted = look.rows.filter((r) => r.userId !== null || r.email !== null)

    const first = await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 9001 })
    expect(first.status).toBe(200)
    expect(first.looker.rows).toEqual({ received: 1500, accepted: 1498, rejected: 2 })
    expect(first.looker.rejected_rows).toHaveLength(2)
    // The one-time download_url was fetched once, by the ingress.
    expect(pipeline.looker.downloads.get(first.downloadPath!)?.fetches).toBe(1)

    const events = await waitForAccepted(pipeline.simulator, p, accepted.length)
    checkBodies(pipeline, p, accepted, look.ranAt)
    const messageIds = new Set(events.map((e) => e.messageId))
    expect(messageIds.size).toBe(accepted.length)
    expect(pipeline.simulator.state.counters.duplicates).toBe(0)

    // Looker re-delivers the same run (same plan, same ran_at): identical messageIds, all skipped by dedupe.
    const requestsBefore = pipeline.simulator.state.counters.requests
    const skippedBefore = await duplicatesSkipped()
    const again = await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 9001 })
    expect(again.looker.rows).toEqual({ received: 1500, accepted: 1498, rejected: 2 })
    await waitFor(async () => (await duplicatesSkipped()) - skippedBefore >= accepted.length, {
      timeoutMs: 60_000,
      message: 'the segment service to skip the re-sent rows',
    })
    expect(acceptedFor(pipeline.simulator, p)).toHaveLength(accepted.length)
    expect(pipeline.simulator.state.counters.requests).toBe(requestsBefore)
    expect(pipeline.simulator.state.counters.duplicates).toBe(0)
  }, 180_000)

  it('a pushed execute (plain and base64 attachment) delivers exactly the expected bodies once; re-pushing delivers nothing new', async () => {
    const p = prefix()
    const look = identifyLook({ prefix: p, rows: 800, anonymousEvery: 7, ranAt: '2026-11-21T08:30:00+00:00' })

    const pushed = await pipeline.execute({ look: look.body, mode: 'pushed', scheduledPlanId: 9002 })
    expect(pushed.status).toBe(200)
    expect(pushed.looker.success).toBe(true)
    expect(pushed.looker.rows).toEqual({ received: 800, accepted: 800, rejected: 0 })

    const events = await waitForAccepted(pipeline.simulator, p, 800)
    checkBodies(pipeline, p, look.rows, look.ranAt)
    expect(new Set(events.map((e) => e.messageId)).size).toBe(800)

    const requestsBefore = pipeline.simulator.state.counters.requests
    const skippedBefore = await duplicatesSkipped()
    const again = await pipeline.execute({ look: look.body, mode: 'pushed', base64: true, scheduledPlanId: 9002 })
    expect(again.looker.rows).toEqual({ received: 800, accepted: 800, rejected: 0 })
    await waitFor(async () => (await duplicatesSkipped()) - skippedBefore >= 800, {
      timeoutMs: 60_000,
      message: 'the segment service to skip the re-pushed rows',
    })
    expect(acceptedFor(pipeline.simulator, p)).toHaveLength(800)
    expect(pipeline.simulator.state.counters.requests).toBe(requestsBefore)
  }, 180_000)

  it('segment_track and segment_group sends arrive as track (event, properties) and group (groupId, traits) calls, once each', async () => {
    const p = prefix()
    const look = accountLook({ prefix: p, rows: 250, ranAt: '2026-11-20T12:00:00Z' })
    const timestamp = '2026-11-20T12:00:00.000Z'
    const track = await pipeline.execute({
      look: look.body,
      mode: 'streamed',
      scheduledPlanId: 9004,
      action: 'segment_track',
      formParams: { event: 'Became VIP' },
    })
    expect(track.looker.rows).toEqual({ received: 250, accepted: 250, rejected: 0 })
    const group = await pipeline.execute({
      look: look.body,
      mode: 'pushed',
      scheduledPlanId: 9005,
      action: 'segment_group',
    })
    expect(group.looker.rows).toEqual({ received: 250, accepted: 250, rejected: 0 })

    const events = await waitForAccepted(pipeline.simulator, p, 500)
    expect(new Set(events.map((e) => e.messageId)).size).toBe(500)
    const tracks = new Map(events.filter((e) => e.item.type === 'track').map((e) => [e.item.userId, e.item]))
    const groups = new Map(events.filter((e) => e.item.type === 'group').map((e) => [e.item.userId, e.item]))
    expect(tracks.size).toBe(250)
    expect(groups.size).toBe(250)
    for (const row of look.rows) {
      const { messageId: trackId, ...trackBody } = tracks.get(row.userId)!
      expect(trackId).toMatch(UUID)
      expect(trackBody).toEqual({
        type: 'track',
        userId: row.userId,
        event: 'Became VIP',
        properties: { 'companies.tier': row.tier, 'orders.total': row.total },
        context: { traits: { email: row.email } },
        timestamp,
      })
      const { messageId: groupMessageId, ...groupBody } = groups.get(row.userId)!
      expect(groupMessageId).toMatch(UUID)
      expect(groupBody).toEqual({
        type: 'group',
        userId: row.userId,
        groupId: row.groupId,
        traits: { 'companies.tier': row.tier, 'orders.total': row.total, email: row.email },
        timestamp,
      })
    }
  }, 120_000)

  it('a slow streamed Look is delivered while it streams: events reach the simulator before the ingress answers Looker, after keep-alive newlines', async () => {
    const p = prefix()
    const options = { prefix: p, rows: 900 }
    const ranAt = '2026-11-22T07:00:00+00:00'
    const sent = await pipeline.execute({
      look: {
        head: lookHead(ranAt),
        rows: options.rows,
        row: (i) => rowJson(identifyRow(options, i)),
        tail: LOOK_TAIL,
        rowsPerSecond: 300,
      },
      mode: 'streamed',
      scheduledPlanId: 9006,
    })
    expect(sent.looker.rows).toEqual({ received: 900, accepted: 900, rejected: 0 })
    expect(sent.elapsedMs).toBeGreaterThanOrEqual(2500)
    expect(sent.keepAliveNewlines).toBeGreaterThan(0)

    const events = await waitForAccepted(pipeline.simulator, p, 900)
    expect(new Set(events.map((e) => e.messageId)).size).toBe(900)
    const firstAccepted = Math.min(...events.map((e) => e.acceptedAt))
    // Rows flow through while Looker is still streaming: the first reached Segment seconds before the answer.
    expect(sent.answeredAt - firstAccepted).toBeGreaterThan(1000)
  }, 120_000)

  it('GET /sends/:id on the ingress shows the delivered count once the segment service delivered the send', async () => {
    const p = prefix()
    const look = identifyLook({ prefix: p, rows: 300, rejectRows: [5] })
    const sent = await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 9003 })
    const sendId = sent.looker.send_id!
    expect(sendId).toBeTypeOf('string')

    await waitForAccepted(pipeline.simulator, p, 299)
    const record = await waitFor(
      async () => {
        const send = await pipeline.getSend(sendId)
        return send.delivered === 299 ? send : false
      },
      { timeoutMs: 30_000, message: 'delivered = 299 in the send record' },
    )
    expect(record).toMatchObject({
      sendId,
      action: 'segment_identify',
      destination: 'segment',
      connection: 'default',
      status: 'succeeded',
      received: 300,
      accepted: 299,
      rejected: 1,
      delivered: 299,
    })
    expect(record.failed ?? 0).toBe(0)
    expect(record.deadLettered ?? 0).toBe(0)

    // Looker runs the same schedule again: nothing is sent twice, and the new send's record says its rows were
    // delivered before (it would otherwise look as if it were still delivering).
    const again = await pipeline.execute({ look: look.body, mode: 'streamed', scheduledPlanId: 9003 })
    const againId = again.looker.send_id!
    expect(againId).not.toBe(sendId)
    const repeated = await waitFor(
      async () => {
        const send = await pipeline.getSend(againId)
        return send.alreadyDelivered === 299 ? send : false
      },
      { timeoutMs: 30_000, message: 'already_delivered = 299 in the second send record' },
    )
    expect(repeated).toMatchObject({ status: 'succeeded', accepted: 299, rejected: 1 })
    expect(repeated.delivered ?? 0).toBe(0)
    expect(acceptedFor(pipeline.simulator, p)).toHaveLength(299)
  }, 120_000)
})
