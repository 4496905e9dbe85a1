import { serviceEnv, startDeliveryStack, type DeliveryStack } from '@lookstream/delivery-testing'
import { type CanonicalMessage } from '@lookstream/events'
import { startMparticleSimulator, type MparticleSimulatorOptions, type Simulator } from '@lookstream/simulators'

// The shared delivery stack with the mParticle simulator and the mparticle service's environment.
export const API_KEY = 'mparticle-test-key'
export const API_SECRET = 'mparticle-test-secret'

export type MparticleStack = DeliveryStack<Simulator>

export function startMparticleStack(options: MparticleSimulatorOptions = {}): Promise<MparticleStack> {
  return startDeliveryStack({
    simulator: () =>
      startMparticleSimulator({
        credentials: [{ key: API_KEY, secret: API_SECRET }],
        rateLimit: null,
        maxItems: 50_000,
        ...options,
      }),
  })
}

export function mparticleEnv(stack: MparticleStack, extra: Record<string, string> = {}): Record<string, string> {
  return serviceEnv(
    stack,
    {
      MPARTICLE_API_KEY: API_KEY,
      MPARTICLE_API_SECRET: API_SECRET,
      MPARTICLE_API_URL: `${stack.simulator.url}/v2`,
      MPARTICLE_BATCHES_PER_SECOND: '5000',
    },
    extra,
  )
}

/** A profile row as the ingress's mparticle action writes it. */
export function profile(runId: string, index: number, traits: Record<string, unknown> = {}): CanonicalMessage {
  return {
    type: 'identify',
    messageId: `${runId}-${index}`,
    userId: `cust-${runId}-${index}`,
    traits: { 'looker_users.plan': index % 2 === 0 ? 'annual' : 'monthly', 'looker_users.ltv': index, ...traits },
    context: {
      lookstream: { sendId: `send-${runId}`, row: index, action: 'mparticle' },
      identities: { customer_id: `cust-${runId}-${index}` },
    } as CanonicalMessage['context'],
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: {
      All: false,
      mParticle: { connection: 'default', environment: 'production', dataType: 'user_data', eventType: 'other' },
    } as const,
  }
}
