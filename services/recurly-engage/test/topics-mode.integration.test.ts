import { runFileDestination } from '@lookstream/destination'
import { dlqTopic } from '@lookstream/events'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { recurlyEngage } from '../src/recurly-engage.ts'
import { engageEnv, startEngageStack, type EngageStack } from './engage-stack.ts'

// With KAFKA_TOPICS_MODE=verify (production) the service only checks its topics: one it lacks (here its DLQ, which
// the stack does not create) stops the start with the problem named, and nothing is created with the service's own
// settings (a single replica) in place of the topics command's.
describe('recurly-engage with KAFKA_TOPICS_MODE=verify', () => {
  let stack: EngageStack
  beforeAll(async () => {
    stack = await startEngageStack(inject('s3Endpoint'))
  })
  afterAll(async () => {
    await stack?.stop()
  })

  it('refuses to start on a missing topic and creates none', async () => {
    const dlq = dlqTopic('recurly-engage')
    const start = runFileDestination(recurlyEngage, { env: engageEnv(stack, { KAFKA_TOPICS_MODE: 'verify' }) })
    await expect(start).rejects.toMatchObject({ code: 'LS_KAFKA_TOPICS_UNSAFE' })
    await expect(start).rejects.toThrow(`${dlq} does not exist`)
    const admin = stack.client.admin()
    await admin.connect()
    try {
      expect(await admin.listTopics()).not.toContain(dlq)
    } finally {
      await admin.disconnect()
    }
  }, 60_000)
})
