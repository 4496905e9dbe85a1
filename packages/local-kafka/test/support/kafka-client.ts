import { Kafka, logLevel, type ConsumerConfig } from 'kafkajs'

// kafkajs tuned for tests (the spec's "Tuning kafkajs for tests"): short retries, fast heartbeats and
// fetch waits, so a test waits on the broker, not on client defaults.
export function testKafka(brokers: string, clientId = 'local-kafka-test'): Kafka {
  return new Kafka({
    brokers: [brokers],
    clientId,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: 10_000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
  })
}

export const testConsumerConfig = (groupId: string): ConsumerConfig => ({
  groupId,
  sessionTimeout: 6000,
  rebalanceTimeout: 5000,
  heartbeatInterval: 300,
  maxWaitTimeInMs: 200,
  retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
})

let counter = 0
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`
}

// Polls until check() returns a value that is not undefined, or fails after timeoutMs.
export async function waitFor<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
