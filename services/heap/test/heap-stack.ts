import { serviceEnv, startDeliveryStack, type DeliveryStack } from '@lookstream/delivery-testing'
import { type CanonicalMessage } from '@lookstream/events'
import { startHeapSimulator, type HeapSimulator, type HeapSimulatorOptions } from '@lookstream/simulators'

// The shared delivery stack (@lookstream/delivery-testing) with the Heap simulator and the heap service's
// environment. Two environments exist: APP_ID (the default connection's) and OTHER_APP_ID (allowed on it too).
export const APP_ID = '4242'
export const OTHER_APP_ID = '5151'

export type HeapStack = DeliveryStack<HeapSimulator>

export function startHeapStack(options: HeapSimulatorOptions = {}): Promise<HeapStack> {
  return startDeliveryStack({
    simulator: () =>
      startHeapSimulator({
        appIds: [APP_ID, OTHER_APP_ID],
        rateLimits: { identityRequests: null, identityEvents: null, appEvents: null },
        ...options,
      }),
  })
}

export function heapEnv(stack: HeapStack, extra: Record<string, string> = {}): Record<string, string> {
  return serviceEnv(
    stack,
    {
      HEAP_APP_ID: APP_ID,
      HEAP_ALLOWED_APP_IDS: OTHER_APP_ID,
      HEAP_API_URL: stack.simulator.url,
      // Out of the way unless a test is about pacing.
      HEAP_ITEMS_PER_MINUTE: '6000000',
      HEAP_IDENTITY_ITEMS_PER_MINUTE: '600000',
    },
    extra,
  )
}

/** A user-properties message as the ingress writes it for a heap send (join key: an email). */
export function userMessage(
  runId: string,
  index: number,
  traits: Record<string, unknown> = {},
  heapOptions: Record<string, unknown> = {},
): CanonicalMessage {
  return {
    type: 'identify',
    messageId: `${runId}-${index}`,
    userId: `${runId}-user-${index}@example.com`,
    traits: { 'Users Plan': index % 2 === 0 ? 'annual' : 'monthly', 'Users Index': index, ...traits },
    context: { lookstream: { sendId: `send-${runId}`, row: index, action: 'heap' } },
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: {
      All: false,
      Heap: { connection: 'default', propertyType: 'user', joinKey: 'Email', ...heapOptions },
    },
  }
}

/** An account-properties message as the ingress writes it. */
export function accountMessage(runId: string, index: number, traits: Record<string, unknown> = {}): CanonicalMessage {
  const groupId = `${runId}-account-${index}`
  return {
    type: 'group',
    messageId: `${runId}-a${index}`,
    groupId,
    anonymousId: `heap-account:${groupId}`,
    traits: { 'Accounts Tier': index % 3 === 0 ? 'gold' : 'silver', 'Accounts Seats': index, ...traits },
    context: { lookstream: { sendId: `send-${runId}`, row: index, action: 'heap' } },
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: { All: false, Heap: { connection: 'default', propertyType: 'account', joinKey: 'Account' } },
  }
}

/** Updates the simulator accepted for users (or accounts) of one run, keyed by identity. */
export function updatesOf(
  stack: HeapStack,
  kind: 'user' | 'account',
  runId: string,
  appId = APP_ID,
): Map<string, number> {
  const prefix = `${kind}:${appId}:${runId}-`
  const result = new Map<string, number>()
  for (const [key, count] of stack.simulator.updateCounts) {
    if (key.startsWith(prefix)) result.set(key.slice(`${kind}:${appId}:`.length), count)
  }
  return result
}
