import { type DestinationId } from '@lookstream/events'
import { type JsonDetailFields } from '../looker/json-detail-reader.ts'
import { type MappedMessage } from '../actions/action.ts'
import { type ChangedRows } from './changed-rows.ts'
import { type FailureRecorder } from './failure-recorder.ts'
import { rowIdentityReader, type RowIdentity } from './row-identity.ts'

/**
 * runSend hooks of the send history: each rejected row (number, reason class, reason, identity) is kept, and
 * with "changed rows only" unchanged rows are skipped and accepted rows remembered.
 */
export function sendHistoryHooks(
  recorder: FailureRecorder | undefined,
  destination: DestinationId,
  changed: ChangedRows | undefined,
) {
  let identityOf: RowIdentity | undefined
  return {
    ...(changed === undefined
      ? {}
      : {
          skipRow: (row: number, messages: readonly MappedMessage[]) => changed.skipRow(row, messages),
          onAccepted: (row: number) => changed.onAccepted(row),
        }),
    onFields(fields: JsonDetailFields) {
      if (recorder !== undefined) identityOf = rowIdentityReader(fields)
    },
    onRejected(row: number, reason: string, code: string, cells: unknown) {
      changed?.onRejected(row)
      recorder?.add({
        destination,
        row,
        stage: 'rejected',
        code,
        reason,
        identity: cells === undefined ? undefined : identityOf?.(cells),
        at: new Date(),
      })
    },
  }
}

/** Where a send's rows and reasons are shown, for Looker's verdict message. */
export function sendPageUrl(baseUrl: string, sendId: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/history/sends/${encodeURIComponent(sendId)}`
}

/** "Send id …" and the page's URL, for Looker's verdict. The URL is followed by a space, never by punctuation a
 * mail client would take into the link. */
export function sendPointer(sendId: string, pageUrl: string | undefined): string {
  return `Send id ${sendId}.${pageUrl === undefined ? '' : ` Rows and reasons: ${pageUrl}`}`
}
