import { decodeMessage, type CanonicalMessage, type DestinationId, type RejectReason } from '@lookstream/events'
import { type MessageProducer, type SendOutcome } from '../execute/run-send.ts'
import { type DestinationCheck } from './destination-checks.ts'
import { type FailureRecorder } from './failure-recorder.ts'

// A dry run goes through the real send path (read, map, build and validate each message) with this in place
// of the Kafka producer: each message is decoded as a destination service decodes it and checked with the
// destination's own rules; nothing is produced. It keeps the counts, the first problems and a few payloads.

export const MAX_SAMPLES = 3
const MAX_PROBLEMS = 20
const MAX_SAMPLE_CHARS = 4096

export interface DryRunProblem {
  row: number
  reason: string
  code: string
}

export interface DryRunReport {
  /** Checks applied after the ingress's own. */
  checks: string[]
  /** Why the destination service's own checks did not run, when they did not. */
  notChecked?: string
  /** Messages that would have been produced. */
  messages: number
  /** Rows accepted by the ingress that the destination would refuse (dead-letter). */
  refusedRows: number
  problems: DryRunProblem[]
  /** Payloads as the destination would receive them (an item's JSON, a file's lines), clipped. */
  samples: string[]
}

function rowOf(message: CanonicalMessage): number {
  const lookstream = message.context?.lookstream as { row?: unknown } | undefined
  return typeof lookstream?.row === 'number' ? lookstream.row : 0
}

function identityOf(message: CanonicalMessage): Record<string, string> {
  const identity: Record<string, string> = {}
  if (message.userId !== undefined) identity.userId = message.userId
  if (message.anonymousId !== undefined) identity.anonymousId = message.anonymousId
  if (message.type === 'group') identity.groupId = message.groupId
  return identity
}

export class DryRunProducer implements MessageProducer {
  private readonly report: DryRunReport
  private lastRefusedRow = -1
  private readonly check: DestinationCheck | undefined
  private readonly destination: DestinationId
  private readonly recorder: FailureRecorder | undefined

  constructor(
    check: DestinationCheck | { notChecked: string },
    destination: DestinationId,
    recorder: FailureRecorder | undefined,
  ) {
    this.check = 'check' in check ? check : undefined
    this.destination = destination
    this.recorder = recorder
    this.report = {
      checks: ['canonical message schema (decodeMessage)', ...(this.check ? [this.check.label] : [])],
      ...('notChecked' in check ? { notChecked: check.notChecked } : {}),
      messages: 0,
      refusedRows: 0,
      problems: [],
      samples: [],
    }
  }

  send(record: { value: string | Buffer }): Promise<unknown> {
    this.report.messages++
    const decoded = decodeMessage(record.value)
    if (!decoded.ok) {
      this.refuse(0, decoded.errors.join('; '), 'LS_DEST_INVALID_MESSAGE', undefined)
      return Promise.resolve()
    }
    const message = decoded.message
    const result = this.check?.check(message) ?? { ok: true as const, payload: message }
    if (!result.ok) this.refuse(rowOf(message), result.reason, result.code, message)
    else if (this.report.samples.length < MAX_SAMPLES) {
      // A file destination's row is text already (a CSV header and line); an HTTP destination's item is JSON.
      const json = typeof result.payload === 'string' ? result.payload : JSON.stringify(result.payload)
      this.report.samples.push(
        json.length <= MAX_SAMPLE_CHARS
          ? json
          : `${json.slice(0, MAX_SAMPLE_CHARS)}… [${json.length - MAX_SAMPLE_CHARS} more characters]`,
      )
    }
    return Promise.resolve()
  }

  isWritable(): boolean {
    return true
  }

  whenWritable(): Promise<void> {
    return Promise.resolve()
  }

  result(): DryRunReport {
    return this.report
  }

  private refuse(row: number, reason: string, code: string, message: CanonicalMessage | undefined) {
    // A row's messages are produced one after another: count the row once.
    if (row !== this.lastRefusedRow) {
      this.report.refusedRows++
      this.lastRefusedRow = row
      if (this.report.problems.length < MAX_PROBLEMS)
        this.report.problems.push({ row, reason: reason.slice(0, 1024), code })
    }
    this.recorder?.add({
      destination: this.destination,
      row,
      messageId: message?.messageId,
      stage: 'dead-lettered',
      code,
      reason: `would be refused: ${reason}`,
      identity: message === undefined ? undefined : identityOf(message),
      at: new Date(),
    })
  }
}

/**
 * Looker's verdict for a dry run. `withSample`: append the first sample payload (row values: only for Looker's
 * answer, never for the send record in Redis, where the samples are kept sealed).
 */
export function describeDryRun(
  where: string,
  destinationLabel: string,
  outcome: SendOutcome,
  report: DryRunReport,
  pointer: string,
  withSample = true,
): string {
  const unchecked = report.notChecked === undefined ? '' : `; ${report.notChecked}`
  const counts = `${outcome.received} rows read: ${outcome.accepted} would be accepted, ${outcome.rejected} rejected by lookstream; ${destinationLabel} would refuse ${report.refusedRows} of the accepted rows (checked: ${report.checks.join(', ')}${unchecked})`
  const head =
    outcome.failure === undefined
      ? `Dry run for ${where}, nothing was sent. ${counts}.`
      : `Dry run for ${where} stopped: ${outcome.failure.replace(/\.$/, '')}. Nothing was sent. ${counts}.`
  const problems: RejectReason[] = [
    ...outcome.reasons,
    ...report.problems.map((p) => ({ row: p.row, reason: `${destinationLabel} would refuse it: ${p.reason}` })),
  ]
    .sort((a, b) => a.row - b.row)
    .slice(0, 20)
  const first =
    problems.length === 0 ? '' : ` First problems: ${problems.map((p) => `row ${p.row}: ${p.reason}`).join('; ')}.`
  const notes = (outcome.notes ?? []).map((note) => ` Note: ${note}`).join('')
  const sample = !withSample || report.samples[0] === undefined ? '' : ` Sample payload: ${report.samples[0]}`
  return `${head} ${pointer}${first}${notes}${sample}`
}
