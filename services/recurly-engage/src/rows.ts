import { PermanentError, type FileRow } from '@lookstream/destination'
import { type CanonicalMessage } from '@lookstream/events'
import { stringify } from 'csv-stringify/sync'

// A message as a row of a Recurly Engage CSV, and the row checks the service applies. Pure, and free of the S3
// client, so the ingress's dry run checks rows with this same code (the package's `./rows` export).

/** The first column of every file: the customer id Recurly Engage joins traits on. */
export const ID_COLUMN = 'user_id'

// RFC 4180: comma, double quotes (doubled inside), CRLF between records; a cell with a comma, a quote, CR or LF
// is quoted. Booleans are written as true/false, null as an empty cell; numbers as JavaScript writes them.
const CSV_OPTIONS = {
  record_delimiter: '\r\n',
  eof: true,
  // A lone LF or CR in a cell is quoted too (csv-stringify quotes only the record delimiter's sequence).
  quoted_match: /[\r\n]/,
  cast: { boolean: (value: boolean) => (value ? 'true' : 'false') },
} as const

export function csvLine(cells: readonly unknown[]): string {
  return stringify([cells], CSV_OPTIONS)
}

function cellProblem(value: unknown): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'a non-finite number'
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`
}

export function toRecurlyRow(message: CanonicalMessage): FileRow | PermanentError {
  if (message.type !== 'identify') {
    return new PermanentError(
      `Recurly Engage takes identify messages, not ${message.type}`,
      'LS_DEST_UNSUPPORTED_MESSAGE',
    )
  }
  if (message.userId === undefined) {
    return new PermanentError('identify has no userId (the user_id column)', 'LS_DEST_MISSING_IDENTITY')
  }
  const traits = message.traits ?? {}
  const columns = [ID_COLUMN]
  const cells: unknown[] = [message.userId]
  for (const key in traits) {
    if (!Object.hasOwn(traits, key)) continue
    if (key === ID_COLUMN) {
      return new PermanentError(`trait "${ID_COLUMN}" would repeat the first column`, 'LS_DEST_UNSUPPORTED_VALUE')
    }
    const value = traits[key]
    const problem = cellProblem(value)
    if (problem !== undefined) {
      return new PermanentError(
        `trait "${key}" holds ${problem}; a CSV cell takes text, numbers and booleans`,
        'LS_DEST_UNSUPPORTED_VALUE',
      )
    }
    columns.push(key)
    cells.push(value)
  }
  return { columns, line: csvLine(cells) }
}
