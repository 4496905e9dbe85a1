import { FAILURE_STAGES, type FailureStage, type StoredFailure } from '@lookstream/send-history'

// The send page's filters, from its query string. Unknown values are reported, not ignored.

export interface FailureFilter {
  stage?: FailureStage
  destination?: string
  code?: string
  /** Matches the row number, the reason or an identity value (case-insensitive). */
  text?: string
}

export type FilterResult = { ok: true; filter: FailureFilter } | { ok: false; error: string }

const MAX_TEXT = 200

export function parseFailureFilter(query: Record<string, unknown>): FilterResult {
  const filter: FailureFilter = {}
  const value = (name: string) => {
    const v = query[name]
    return typeof v === 'string' ? v.trim() : undefined
  }
  const stage = value('stage')
  if (stage) {
    if (!FAILURE_STAGES.includes(stage as FailureStage)) {
      return { ok: false, error: `Unknown stage "${stage}": choose one of ${FAILURE_STAGES.join(', ')}.` }
    }
    filter.stage = stage as FailureStage
  }
  const destination = value('destination')
  if (destination) filter.destination = destination.slice(0, 64)
  const code = value('code')
  if (code) filter.code = code.slice(0, 64)
  const text = value('q')
  if (text) {
    if (text.length > MAX_TEXT) return { ok: false, error: `The search text is over ${MAX_TEXT} characters.` }
    filter.text = text.toLowerCase()
  }
  return { ok: true, filter }
}

export function matches(failure: StoredFailure, filter: FailureFilter): boolean {
  if (filter.stage !== undefined && failure.stage !== filter.stage) return false
  if (filter.destination !== undefined && failure.destination !== filter.destination) return false
  if (filter.code !== undefined && failure.code !== filter.code) return false
  if (filter.text !== undefined) {
    const text = filter.text
    const haystack = [String(failure.row), failure.reason ?? '', ...Object.values(failure.identity ?? {})]
    if (!haystack.some((s) => s.toLowerCase().includes(text))) return false
  }
  return true
}

export function filterQuery(filter: FailureFilter): string {
  const params = new URLSearchParams()
  if (filter.stage) params.set('stage', filter.stage)
  if (filter.destination) params.set('destination', filter.destination)
  if (filter.code) params.set('code', filter.code)
  if (filter.text) params.set('q', filter.text)
  const text = params.toString()
  return text === '' ? '' : `?${text}`
}
