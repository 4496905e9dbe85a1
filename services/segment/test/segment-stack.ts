import {
  identify as canonicalIdentify,
  serviceEnv,
  startDeliveryStack,
  type DeliveryStack,
} from '@lookstream/delivery-testing'
import { type CanonicalMessage } from '@lookstream/events'
import { startSegmentSimulator, type SegmentSimulatorOptions, type Simulator } from '@lookstream/simulators'

// The shared delivery stack (@lookstream/delivery-testing) with the Segment simulator and the segment
// service's environment.
export const WRITE_KEY = 'segment-test-write-key'

export type SegmentStack = DeliveryStack<Simulator>

export function startSegmentStack(options: SegmentSimulatorOptions = {}): Promise<SegmentStack> {
  return startDeliveryStack({
    simulator: () => startSegmentSimulator({ writeKeys: [WRITE_KEY], rateLimit: null, ...options }),
  })
}

export function segmentEnv(stack: SegmentStack, extra: Record<string, string> = {}): Record<string, string> {
  return serviceEnv(
    stack,
    { SEGMENT_WRITE_KEY: WRITE_KEY, SEGMENT_API_URL: stack.simulator.url, SEGMENT_RATE_LIMIT_RPS: '500' },
    extra,
  )
}

export function identify(runId: string, index: number, traits: Record<string, unknown> = {}): CanonicalMessage {
  return canonicalIdentify(runId, index, { Segment: { connection: 'default' } }, traits)
}
