export const DESTINATIONS = ['segment', 'braze', 'heap', 'mparticle', 'recurly-engage'] as const

export type DestinationId = (typeof DESTINATIONS)[number]

/** The Segment-style key under `integrations` that names each destination. */
export const INTEGRATION_KEYS = {
  segment: 'Segment',
  braze: 'Braze',
  heap: 'Heap',
  mparticle: 'mParticle',
  'recurly-engage': 'Recurly Engage',
} as const satisfies Record<DestinationId, string>

export type IntegrationKey = (typeof INTEGRATION_KEYS)[DestinationId]

/** The connection a message is for when its integration options name none. */
export const DEFAULT_CONNECTION = 'default'

export function isDestinationId(value: string): value is DestinationId {
  return (DESTINATIONS as readonly string[]).includes(value)
}
