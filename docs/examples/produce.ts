// Publishes one identify and one track message to the canonical topics, the way any internal service
// should: validated against the contract, keyed, with the routing headers and a stable messageId.
//
//   KAFKA_BROKERS=127.0.0.1:9092 node --conditions=@lookstream/source docs/examples/produce.ts
//
// A workspace package would import '@lookstream/events' and '@lookstream/kafka' (add them as
// "workspace:*" dependencies); this file sits outside the packages, so it imports their sources directly.
import {
  TOPICS,
  headersFor,
  keyFor,
  messageIdFor,
  topicFor,
  validateMessage,
  type CanonicalMessage,
} from '../../packages/events/src/index.ts'
import { createKafka, createProducer, ensureTopics } from '../../packages/kafka/src/index.ts'

const PRODUCER = 'billing-example'
const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092'
// The natural key of this batch of work: re-running the same job must produce the same ids.
const run = { sendKey: 'billing:renewals', ranAt: process.env.EXAMPLE_RAN_AT ?? '2026-06-01T06:00:00Z' }

function idFor(destination: string, identity: string, content: unknown): string {
  return messageIdFor({ destination, connection: 'default', ...run, identity, content, occurrence: 0 })
}

const traits = { email: 'ada@example.com', plan: 'annual', seats: 3 }
const properties = { plan: 'annual', revenue: 99 }
const messages: CanonicalMessage[] = [
  {
    type: 'identify',
    messageId: idFor('segment,braze', 'cust_123', traits),
    userId: 'cust_123',
    traits,
    timestamp: run.ranAt,
    context: { library: { name: PRODUCER, version: '1.0.0' } },
    integrations: { All: false, Segment: { connection: 'default' }, Braze: { identifierKey: 'external_id' } },
  },
  {
    type: 'track',
    messageId: idFor('segment', 'cust_123', { event: 'Subscription Renewed', properties }),
    userId: 'cust_123',
    event: 'Subscription Renewed',
    properties,
    timestamp: run.ranAt,
    integrations: { All: false, Segment: true },
  },
]

const kafka = createKafka({ brokers, clientId: PRODUCER })
// In production the platform provisions the topics; on a fresh local broker this creates them.
await ensureTopics(
  kafka,
  [TOPICS.identify, TOPICS.track].map((topic) => ({ topic, numPartitions: 6 })),
)
const producer = await createProducer(kafka)
try {
  const acks = await Promise.all(
    messages.map((message) => {
      // Consumers dead-letter invalid messages; checking here turns that into an error at the source.
      const checked = validateMessage(message)
      if (!checked.ok) throw new Error(`invalid ${message.type}: ${checked.errors.join('; ')}`)
      return producer.send({
        topic: topicFor(message),
        key: keyFor(message),
        value: JSON.stringify(message),
        headers: headersFor(message, { producer: PRODUCER }),
      })
    }),
  )
  for (const [index, ack] of acks.entries()) {
    process.stdout.write(`${JSON.stringify({ messageId: messages[index]!.messageId, ...ack })}\n`)
  }
} finally {
  await producer.close()
}
