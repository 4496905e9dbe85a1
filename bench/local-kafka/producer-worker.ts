// One kafkajs producer in its own process: sends batches of `batch` messages of `size` bytes to `topic`
// for `seconds`, keeping `inflight` sends outstanding, then prints {messages, bytes, ms} as JSON.
import { Kafka, logLevel } from 'kafkajs'

const [brokers, topic, size, seconds, batch, inflight] = process.argv.slice(2)
const kafka = new Kafka({ brokers: [brokers!], clientId: 'bench-producer', logLevel: logLevel.ERROR })
const producer = kafka.producer({ allowAutoTopicCreation: false })
await producer.connect()
const value = Buffer.alloc(Number(size), 'x')
const messages = Array.from({ length: Number(batch) }, (_, i) => ({ key: `key-${i % 64}`, value }))
const deadline = Date.now() + Number(seconds) * 1000
let sent = 0
const started = Date.now()
await Promise.all(
  Array.from({ length: Number(inflight) }, async () => {
    while (Date.now() < deadline) {
      await producer.send({ topic: topic!, acks: -1, messages })
      sent += messages.length
    }
  }),
)
const ms = Date.now() - started
await producer.disconnect()
console.log(JSON.stringify({ messages: sent, bytes: sent * Number(size), ms }))
