import {
  identify as canonicalIdentify,
  serviceEnv,
  startDeliveryStack,
  type DeliveryStack,
} from '@lookstream/delivery-testing'
import { type CanonicalMessage } from '@lookstream/events'
import { startBrazeSimulator, type BrazeSimulator, type BrazeSimulatorOptions } from '@lookstream/simulators'

// The shared delivery stack (@lookstream/delivery-testing) with the Braze simulator and the braze service's
// environment. The simulator is not a Braze instance host, so the service is told to allow exactly it.
export const API_KEY = 'braze-test-api-key'
export const LABEL = 'WINBACK_Q3'

export type BrazeStack = DeliveryStack<BrazeSimulator>

export function startBrazeStack(options: BrazeSimulatorOptions = {}): Promise<BrazeStack> {
  return startDeliveryStack({
    simulator: () => startBrazeSimulator({ apiKeys: [API_KEY], rateLimit: null, ...options }),
  })
}

export function brazeEnv(stack: BrazeStack, extra: Record<string, string> = {}): Record<string, string> {
  return serviceEnv(
    stack,
    {
      BRAZE_API_KEY: API_KEY,
      BRAZE_REST_ENDPOINT: stack.simulator.url,
      BRAZE_ALLOWED_HOSTS: new URL(stack.simulator.url).host,
    },
    extra,
  )
}

/** An identify as the ingress's braze action writes it (profiles created, so the final state is visible). */
export function identify(
  runId: string,
  index: number,
  traits: Record<string, unknown> = {},
  options: Record<string, unknown> = {},
): CanonicalMessage {
  return canonicalIdentify(
    runId,
    index,
    {
      Braze: {
        connection: 'default',
        identifierKey: 'external_id',
        exportLabel: LABEL,
        updateExistingOnly: false,
        nulls: 'skip',
        ...options,
      },
    },
    traits,
  )
}

/** The attributes object the service must send for `identify(run, index, traits)` (nulls skipped). */
export function expectedAttributes(index: number, traits: Record<string, unknown> = {}): Record<string, unknown> {
  const attributes: Record<string, unknown> = {
    external_id: `user-${index}`,
    _update_existing_only: false,
    looker_export: { add: [LABEL] },
    plan: index % 2 === 0 ? 'annual' : 'monthly',
    index,
  }
  for (const [name, value] of Object.entries(traits)) if (value !== null) attributes[name] = value
  return attributes
}

/** The profile attributes Braze holds after that update. */
export function expectedProfile(index: number, traits: Record<string, unknown> = {}): Record<string, unknown> {
  const { external_id: _id, _update_existing_only: _mode, ...rest } = expectedAttributes(index, traits)
  return { ...rest, looker_export: [LABEL] }
}

export function profileOf(stack: BrazeStack, index: number): Record<string, unknown> | undefined {
  return stack.simulator.profiles.find({ kind: 'external_id', value: `user-${index}` })?.attributes
}

/** How many attributes objects for these users the simulator accepted (Braze has no dedupe: repeats count). */
export function acceptedCount(stack: BrazeStack): number {
  return stack.simulator.state.counters.accepted
}
