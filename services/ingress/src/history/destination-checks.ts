import { type DestinationId, type CanonicalMessage, type ConnectionSettings } from '@lookstream/events'
import { PermanentError, type BatchLimits } from '@lookstream/destination'
import { braze, brazeRowConnection, toBrazeItem } from '@lookstream/braze'
import { heap, heapRowConnection, toHeapItem } from '@lookstream/heap'
import { mparticle } from '@lookstream/mparticle'
import { csvLine, toRecurlyRow } from '@lookstream/recurly-engage/rows'
import { segment } from '@lookstream/segment'

// The checks a destination service applies to a message before sending it, taken from the service's own
// destination module (the code that runs there, not a copy): its toItem / toRow (which refuses what the vendor
// would drop) and its per-item size limit, in the runtime's order. A service whose mapping reads its connection
// (Braze: the workspace's array limit; Heap: the connection's environments) gets the connection rebuilt by the
// service's own code from the settings it announced in the destination registry (its publicSettings, never a
// secret: docs/adr/0020-dry-run-with-the-services-row-checks.md).

export type CheckResult = { ok: true; payload: unknown } | { ok: false; reason: string; code: string }

export interface DestinationCheck {
  /** What was checked, for the report. */
  label: string
  check(message: CanonicalMessage): CheckResult
}

/**
 * An HTTP destination's checks: its toItem, then the runtime's per-item size limit on the item as the runtime
 * encodes it (process-records.ts).
 */
function itemCheck<Item>(
  label: string,
  destination: { limits: BatchLimits; encode?(item: Item): string },
  toItem: (message: CanonicalMessage) => Item | PermanentError,
): DestinationCheck {
  const limits = destination.limits
  return {
    label,
    check(message) {
      const item = toItem(message)
      if (item instanceof PermanentError) return { ok: false, reason: item.message, code: item.code }
      const bytes = Buffer.byteLength(
        destination.encode === undefined ? JSON.stringify(item) : destination.encode(item),
      )
      if (bytes > limits.maxItemBytes) {
        return {
          ok: false,
          reason: `item is ${bytes} bytes, over the ${limits.maxItemBytes}-byte limit per event`,
          code: 'LS_DEST_ITEM_TOO_LARGE',
        }
      }
      return { ok: true, payload: item }
    },
  }
}

/**
 * The destination's own checks for a send on `connection`, given the settings its service announced for that
 * connection in the registry (undefined: none announced). Undefined when only the canonical schema can be checked.
 */
export function destinationCheck(
  destination: DestinationId,
  connection: string,
  settings: ConnectionSettings | undefined,
): DestinationCheck | undefined {
  switch (destination) {
    case 'segment':
      // Segment's and mParticle's mappings do not read the connection (credentials only matter for sending).
      return itemCheck("Segment's rules (services/segment)", segment, (m) => segment.toItem(m, undefined as never))
    case 'mparticle':
      return itemCheck("mParticle's rules (services/mparticle)", mparticle, (m) =>
        mparticle.toItem(m, undefined as never),
      )
    case 'braze': {
      const rules = brazeRowConnection(settings)
      const limits = `arrays of at most ${rules.connection.maxArrayLength} values`
      const from =
        rules.defaulted.length === 0
          ? `connection "${connection}"'s ${limits}`
          : `${limits}: the default, connection "${connection}" announced no limits`
      return itemCheck(`Braze's rules (services/braze; ${from})`, braze, (m) => toBrazeItem(m, rules.connection))
    }
    case 'heap': {
      const rules = heapRowConnection(connection, settings)
      if (rules === undefined) return undefined
      return itemCheck(
        `Heap's rules (services/heap; connection "${connection}", environments ${[...rules.appIds].join(', ')})`,
        heap,
        (m) => toHeapItem(m, rules),
      )
    }
    case 'recurly-engage':
      return {
        label: "Recurly Engage's rules (services/recurly-engage)",
        check(message) {
          const row = toRecurlyRow(message)
          if (row instanceof PermanentError) return { ok: false, reason: row.message, code: row.code }
          // The payload is the row as the file holds it, under its header line.
          return { ok: true, payload: `${csvLine(row.columns)}${row.line}` }
        },
      }
    default:
      return undefined
  }
}

/** Why the destination's own checks do not run for this send, for the report (undefined when they do). */
export function uncheckedReason(destination: DestinationId, connection: string): string {
  return destination === 'heap'
    ? `Heap's rules not checked: connection "${connection}" announced no environments in the destination registry`
    : `no rules of the ${destination} service are known to the ingress`
}
