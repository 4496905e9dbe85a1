import { readTopic, type DeliveryStack } from '@lookstream/delivery-testing'
import { RUNTIME_HEADERS, sendRecordKey } from '@lookstream/destination'
import { dlqTopic, HEADERS, TOPICS, type DestinationId } from '@lookstream/events'
import { allRowFailures, deriveHistoryKey } from '@lookstream/send-history'
import { waitFor } from '@lookstream/testing'
import { expect } from 'vitest'
import { post, type Ingress } from './ingress-harness.ts'

// What the dry-run tests share: Looker's answer, the end offsets that show nothing was produced, and the real
// send's outcome at the destination (its counts in the send record, its dead letters with their reasons).

export interface DryRunAnswer {
  success: boolean
  message: string
  send_id: string
  rows: { received: number; accepted: number; rejected: number }
  rejected_rows: { row: number; reason: string }[]
  dry_run?: {
    messages: number
    refused_rows: number
    checks: string[]
    problems: { row: number; reason: string; code: string }[]
    sample_payloads: string[]
  }
}

/** The high offset of every partition of the topics a send could write to. */
export async function endOffsets(stack: DeliveryStack, destination: DestinationId): Promise<Record<string, string>> {
  const admin = stack.client.admin()
  await admin.connect()
  try {
    const result: Record<string, string> = {}
    for (const topic of [TOPICS.identify, TOPICS.track, TOPICS.group, TOPICS.sends, dlqTopic(destination)]) {
      const offsets = await admin.fetchTopicOffsets(topic).catch(() => [])
      result[topic] = offsets.map((o) => `${o.partition}:${o.high}`).join(',')
    }
    return result
  } finally {
    await admin.disconnect()
  }
}

export async function executeLook(
  ingress: Ingress,
  action: string,
  downloadUrl: string,
  form: Record<string, string>,
): Promise<DryRunAnswer> {
  const answer = await post(`${ingress.url}/actions/${action}/execute`, {
    type: 'query',
    scheduled_plan: { scheduled_plan_id: 7070, url: 'https://looker.example.com/looks/12', download_url: downloadUrl },
    form_params: form,
  })
  expect(answer.status).toBe(200)
  return answer.json.looker as unknown as DryRunAnswer
}

/** A dry run of the Look at downloadUrl: Looker's answer, after checking that nothing reached any of its topics. */
export async function executeDryRun(
  ingress: Ingress,
  stack: DeliveryStack,
  destination: DestinationId,
  downloadUrl: string,
  form: Record<string, string>,
): Promise<DryRunAnswer> {
  const before = await endOffsets(stack, destination)
  const answer = await executeLook(ingress, destination, downloadUrl, { ...form, lookstream_run: 'dry_run' })
  expect(await endOffsets(stack, destination)).toEqual(before)
  return answer
}

/** Waits until every accepted row of a real send is delivered or dead-lettered; returns both counts. */
export async function deliveryCounts(
  ingress: Ingress,
  answer: { send_id: string; rows: { accepted: number } },
): Promise<{ delivered: number; deadLettered: number }> {
  return waitFor(
    async () => {
      const record = await ingress.redis.hgetall(sendRecordKey(answer.send_id))
      const delivered = Number(record.delivered ?? 0)
      const deadLettered = Number(record.dead_lettered ?? 0)
      return delivered + deadLettered === answer.rows.accepted && { delivered, deadLettered }
    },
    { timeoutMs: 90_000, intervalMs: 200, message: 'every accepted row delivered or dead-lettered' },
  )
}

/** The real send's dead letters as (row, reason, code), in row order. */
export async function deadLetteredRows(
  stack: DeliveryStack,
  destination: DestinationId,
  sendId: string,
  count: number,
): Promise<{ row: number; reason: string | undefined; code: string | undefined }[]> {
  const dead = await readTopic(stack, dlqTopic(destination), count, (r) => r.headers[HEADERS.sendId] === sendId)
  return dead
    .map((r) => ({
      row: (JSON.parse(r.value!.toString()) as { context: { lookstream: { row: number } } }).context.lookstream.row,
      reason: r.headers[HEADERS.error],
      code: r.headers[RUNTIME_HEADERS.errorCode],
    }))
    .sort((a, b) => a.row - b.row)
}

export interface RecordedFailure {
  row: number
  stage: string
  code: string
  reason: string | undefined
}

/**
 * Every failed row the send history holds for a send (what the page shows), in row order: the ingress's
 * rejections, and the rows the destination dead-lettered (or, for a dry run, would refuse). A dry run's
 * refusals read "would be refused: <the service's reason>"; that prefix is taken off, so a dry run's list and a
 * real send's compare as they are.
 */
export async function recordedFailures(ingress: Ingress, secret: string, sendId: string): Promise<RecordedFailure[]> {
  const all: RecordedFailure[] = []
  for await (const page of allRowFailures(ingress.redis, sendId, deriveHistoryKey(secret))) {
    for (const failure of page) {
      all.push({
        row: failure.row,
        stage: failure.stage,
        code: failure.code,
        reason: failure.reason?.replace(/^would be refused: /, ''),
      })
    }
  }
  return all.sort((a, b) => a.row - b.row || a.stage.localeCompare(b.stage))
}

/**
 * The real send reports what its dry run did: the same rows received, accepted and rejected at the ingress, as many
 * dead letters as the dry run refused (the same rows and reasons, its first problems among them), and the same
 * failed rows in the send history.
 */
export async function expectRealSendLikeDryRun(options: {
  ingress: Ingress
  stack: DeliveryStack
  destination: DestinationId
  historySecret: string
  dry: DryRunAnswer
  real: DryRunAnswer
  refused: readonly { row: number; reason: string }[]
  rejected: number
}): Promise<void> {
  const { ingress, stack, destination, historySecret, dry, real, refused } = options
  expect(real.rows).toEqual(dry.rows)
  expect(real.rejected_rows).toEqual(dry.rejected_rows)
  expect(real.dry_run).toBeUndefined()

  const counts = await deliveryCounts(ingress, real)
  expect(counts.deadLettered).toBe(dry.dry_run!.refused_rows)
  const dead = await deadLetteredRows(stack, destination, real.send_id, refused.length)
  expect(dead).toHaveLength(refused.length)
  expect(dead.map(({ row, reason }) => ({ row, reason }))).toEqual(refused)
  expect(dead.slice(0, 20)).toEqual(dry.dry_run!.problems)

  // The send history (the page) holds the same failed rows with the same reasons for the dry run and the real
  // send: every rejection at the ingress and every row the service refused, not only the first problems.
  const expected = await recordedFailures(ingress, historySecret, dry.send_id)
  expect(expected).toHaveLength(options.rejected + refused.length)
  const recorded = await waitFor(
    async () => {
      const failures = await recordedFailures(ingress, historySecret, real.send_id)
      return failures.length === expected.length && failures
    },
    { timeoutMs: 30_000, message: "the real send's failed rows in the send history" },
  )
  expect(recorded).toEqual(expected)
}
