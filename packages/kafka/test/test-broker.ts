import { randomUUID } from 'node:crypto'
import { startLocalKafka } from '@lookstream/local-kafka'
import { pino } from 'pino'

export interface TestBroker {
  brokers: string
  stop(): Promise<void>
}

/**
 * KAFKA_BROKERS when set (a real cluster or the harness's broker), else our own local-kafka process that
 * stop() ends by PID. Switch to the harness's inject('kafkaBrokers') once packages/testing provides it.
 */
export async function startTestBroker(): Promise<TestBroker> {
  const fromEnv = process.env.KAFKA_BROKERS
  if (fromEnv !== undefined && fromEnv !== '') return { brokers: fromEnv, stop: async () => {} }
  const broker = await startLocalKafka({ inMemory: true })
  return { brokers: broker.brokers, stop: () => broker.stop() }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID()}`
}

export const testLogger = pino({ level: process.env.LOG_LEVEL ?? 'warn' })

/** Polls `condition` until it holds or the deadline passes (then throws with `what`). */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
