import { type DestinationId } from '@lookstream/events'
import { type JsonDetailField, type JsonDetailFields } from '../looker/json-detail-reader.ts'
import { type LookerVersion } from '../looker/looker-version.ts'

// An action is plain data plus two pure functions; the list in index.ts is explicit (no registration by
// side effect, no class hierarchy).

export type { DestinationId }

export type RequiredField = { tag: string } | { any_tag: string[] } | { all_tags: string[] }

export interface FormOption {
  name: string
  label: string
}

export interface FormField {
  name: string
  label: string
  description?: string
  type: 'string' | 'select' | 'textarea'
  default?: string
  required?: boolean
  options?: FormOption[]
}

/** A canonical message as mapRow builds it; the pipeline adds messageId (and timestamp unless set). */
export interface MappedMessage {
  type: 'identify' | 'track' | 'group'
  userId?: string
  anonymousId?: string
  groupId?: string
  event?: string
  traits?: Record<string, unknown>
  properties?: Record<string, unknown>
  context?: Record<string, unknown>
  timestamp?: string
  integrations: Record<string, unknown>
}

export type MapResult = { ok: true; messages: MappedMessage[] } | { ok: false; reason: string }

/** Everything a send's mapping depends on besides the rows. */
export interface SendContext {
  connection: string
  /** Form values with defaults applied. */
  form: Readonly<Record<string, string>>
  /** Field names listed in the query's vis_config.hidden_fields. */
  hiddenFields: ReadonlySet<string>
}

export type RowMapper = (row: unknown) => MapResult

/**
 * Either a mapper for this send's fields (with `notes` on what of the Look is deliberately not sent, for the
 * verdict), or the reason the send cannot run (e.g. a missing tag).
 */
export type PrepareResult = { ok: true; mapRow: RowMapper; notes?: string[] } | { ok: false; reason: string }

export interface Action {
  name: string
  label: string
  description: string
  destination: DestinationId
  /** Key under `integrations` (Segment style). */
  integration: string
  requiredFields: RequiredField[]
  form: FormField[]
  supportedFormats: (version: LookerVersion | undefined) => string[]
  /** Checks the form values; returns validation errors keyed by form field. */
  validateForm?: (form: Readonly<Record<string, string>>) => Record<string, string>
  /**
   * Checks the form against the settings the destination service announced for the send's connection in the
   * destination registry, before anything is produced; returns validation errors keyed by form field.
   */
  checkSettings?: (
    form: Readonly<Record<string, string>>,
    connection: string,
    settings: Readonly<Record<string, string | readonly string[]>>,
  ) => Record<string, string>
  /** Pure: derives, once per send, how each row maps to messages. */
  prepare: (fields: JsonDetailFields, context: SendContext) => PrepareResult
}

export type { JsonDetailField, JsonDetailFields }
