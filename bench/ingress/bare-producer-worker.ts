// The bare-producer ceiling, in its own process as the ingress is: a kafkajs producer (idempotent, acks -1,
// one request in flight as idempotence requires) sending the records of a frames file with sendBatch,
// `batch` records per call. Records are read and decoded while the previous batch is in flight.
//   node --conditions=@lookstream/source bench/ingress/bare-producer-worker.ts <brokers> <topic> <frames> <batch>
//        [<kafkajs dir>]
// Without a kafkajs dir it uses the installed (patched) kafkajs; with one, that copy (stock-kafkajs.ts).
// Prints {"messages", "ms", "peakRss"} as JSON: ms from the first sendBatch until the last one is acknowledged.
import { createRequire } from 'node:module'
import type * as KafkaJs from 'kafkajs'
import { type Message } from 'kafkajs'
import { FrameReader } from './message-frames.ts'

const [brokers, topic, frames, batchArg, kafkajsDir] = process.argv.slice(2)
const batch = Number(batchArg)
const { Kafka, logLevel } = (
  kafkajsDir === undefined ? await import('kafkajs') : createRequire(import.meta.url)(kafkajsDir)
) as typeof KafkaJs
const kafka = new Kafka({ brokers: [brokers!], clientId: 'bench-bare-producer', logLevel: logLevel.ERROR })
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
await producer.connect()
const reader = new FrameReader(frames!)
const load = (): Message[] =>
  reader.next(batch).map((record) => ({ key: record.key, value: record.value, headers: record.headers }))

let messages = load()
let sent = 0
const started = performance.now()
while (messages.length > 0) {
  const inFlight = producer.sendBatch({ topicMessages: [{ topic: topic!, messages }], acks: -1 })
  const following = load()
  await inFlight
  sent += messages.length
  messages = following
}
const ms = performance.now() - started
reader.close()
await producer.disconnect()
// maxRSS is the process's peak resident set size in KiB (getrusage), the same figure as VmHWM.
console.log(JSON.stringify({ messages: sent, ms, peakRss: process.resourceUsage().maxRSS * 1024 }))
