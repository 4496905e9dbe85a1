import { type DestinationId, type CanonicalMessage } from '@lookstream/events'
import { PermanentError, type BatchLimits } from '@lookstream/destination'
import { mparticle } from '@lookstream/mparticle'
import { segment } from '@lookstream/segment'

// The checks a destination service applies to a message before sending it, taken from the service's own
// destination module (the code that runs there, not a copy): its toItem (which refuses what the vendor
// would drop) and its per-item size limit, in the runtime's order. Destinations whose service is not
// in this repository yet are checked against the canonical schema only (decodeMessage, as every consumer).

export type CheckResult = { ok: true; payload: unknown } | { ok: false; reason: string; code: string }

export interface DestinationCheck {
  /** What was checked, for the report. */
  label: string
  check(message: CanonicalMessage): CheckResult
}

interface RuntimeDestination<Item> {
  limits: BatchLimits
  // The connection is not needed to map an item (credentials and endpoints only matter for sending).
  toItem(message: CanonicalMessage, connection: never): Item | PermanentError
}

function runtimeCheck<Item>(label: string, destination: RuntimeDestination<Item>): DestinationCheck {
  return {
    label,
    check(message) {
      const item = destination.toItem(message, undefined as never)
      if (item instanceof PermanentError) return { ok: false, reason: item.message, code: item.code }
      const bytes = Buffer.byteLength(JSON.stringify(item))
      if (bytes > destination.limits.maxItemBytes) {
        return {
          ok: false,
          reason: `item is ${bytes} bytes, over the ${destination.limits.maxItemBytes}-byte limit per event`,
          code: 'LS_DEST_ITEM_TOO_LARGE',
        }
      }
      return { ok: true, payload: item }
    },
  }
}

const CHECKS: Partial<Record<DestinationId, DestinationCheck>> = {
  segment: runtimeCheck("Segment's rules (services/segment)", segment),
  mparticle: runtimeCheck("mParticle's rules (services/mparticle)", mparticle),
}

export function destinationCheck(destination: DestinationId): DestinationCheck | undefined {
  return CHECKS[destination]
}
