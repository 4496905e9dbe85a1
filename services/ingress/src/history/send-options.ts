import { type Action, type FormField } from '../actions/action.ts'

// Per-send options offered in every action's form: a dry run, and sending only the rows that changed since
// the schedule's last run. Looker sends form values as strings; anything else is a validation error.

export const RUN_FIELD = 'lookstream_run'
export const ROWS_FIELD = 'lookstream_rows'

export type RunMode = 'send' | 'dry_run'
export type RowsMode = 'all' | 'changed' | 'all_remember'

export const SEND_OPTION_FIELDS: FormField[] = [
  {
    name: RUN_FIELD,
    label: 'Run',
    description:
      'Dry run: read the Look, map and check every row against the destination’s rules, send nothing, and answer with the counts, the first problems and sample payloads.',
    type: 'select',
    default: 'send',
    required: false,
    options: [
      { name: 'send', label: 'Send the rows' },
      { name: 'dry_run', label: 'Dry run (check only, send nothing)' },
    ],
  },
  {
    name: ROWS_FIELD,
    label: 'Rows to send',
    description:
      'For a schedule: send only rows that are new or changed since its last run, plus rows that failed then. "Send all and remember" sends every row and starts the comparison again.',
    type: 'select',
    default: 'all',
    required: false,
    options: [
      { name: 'all', label: 'All rows' },
      { name: 'changed', label: 'Only new or changed rows (scheduled sends)' },
      { name: 'all_remember', label: 'All rows, and remember them for the next changed-only run' },
    ],
  },
]

export interface SendOptions {
  run: RunMode
  rows: RowsMode
}

const RUN_MODES: readonly string[] = ['send', 'dry_run']
const ROWS_MODES: readonly string[] = ['all', 'changed', 'all_remember']

export function validateSendOptions(form: Readonly<Record<string, string>>): Record<string, string> {
  const errors: Record<string, string> = {}
  const run = form[RUN_FIELD] ?? 'send'
  const rows = form[ROWS_FIELD] ?? 'all'
  if (!RUN_MODES.includes(run))
    errors[RUN_FIELD] = `Run must be one of ${RUN_MODES.join(', ')}; got ${JSON.stringify(run.slice(0, 40))}.`
  if (!ROWS_MODES.includes(rows)) {
    errors[ROWS_FIELD] =
      `Rows to send must be one of ${ROWS_MODES.join(', ')}; got ${JSON.stringify(rows.slice(0, 40))}.`
  }
  return errors
}

/** Call after validateSendOptions accepted the form. */
export function sendOptionsOf(form: Readonly<Record<string, string>>): SendOptions {
  return { run: (form[RUN_FIELD] ?? 'send') as RunMode, rows: (form[ROWS_FIELD] ?? 'all') as RowsMode }
}

/** The action with the send options appended to its form and checked with its own form validation. */
export function withSendOptions(action: Action): Action {
  const validateForm = action.validateForm
  return {
    ...action,
    form: [...action.form, ...SEND_OPTION_FIELDS],
    validateForm: (form) => ({ ...(validateForm?.(form) ?? {}), ...validateSendOptions(form) }),
  }
}
