import { randomUUID } from 'node:crypto'
import type {} from '@lookstream/testing'
import { pino } from 'pino'
import { inject } from 'vitest'

/** The broker the harness's globalSetup provides (KAFKA_BROKERS, a container, or its own local-kafka). */
export function testBrokers(): string {
  const unavailable = inject('kafkaUnavailable')
  if (unavailable !== '') throw new Error(`no Kafka broker for the tests: ${unavailable}`)
  return inject('kafkaBrokers')
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
