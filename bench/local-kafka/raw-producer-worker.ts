// A producer with next to no client-side cost: one pre-encoded Produce v7 request (acks=-1, a batch of
// `batch` records of `size` bytes) sent over and over with `inflight` requests pipelined. It measures what
// the broker sustains when the client is not the bottleneck. Prints {messages, bytes, ms} as JSON.
import { connect } from 'node:net'
import { API_BY_KEY, buildBatch, encodeRequest } from '@lookstream/local-kafka'

const [port, topic, size, seconds, batch, inflight] = process.argv.slice(2).map((a, i) => (i === 1 ? a : Number(a)))
const value = Buffer.alloc(size as number, 'r')
const records = Array.from({ length: batch as number }, () => ({ key: null, value }))
const frame = encodeRequest(
  API_BY_KEY.get(0)!,
  { apiKey: 0, apiVersion: 7, correlationId: 0, clientId: 'bench-raw' },
  {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30_000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records: buildBatch(records) }] }],
  },
)
const socket = connect({ host: '127.0.0.1', port: port as number })
await new Promise<void>((resolve) => socket.once('connect', resolve))
const deadline = Date.now() + (seconds as number) * 1000
const started = Date.now()
let sent = 0
let acked = 0
let pending = Buffer.alloc(0)
const send = (): void => {
  frame.writeInt32BE(sent++, 8)
  socket.write(Buffer.from(frame))
}
await new Promise<void>((resolve) => {
  socket.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk])
    while (pending.length >= 4 && pending.length >= pending.readInt32BE(0) + 4) {
      pending = pending.subarray(pending.readInt32BE(0) + 4)
      acked++
      if (Date.now() < deadline) send()
      else if (acked === sent) resolve()
    }
  })
  for (let i = 0; i < (inflight as number); i++) send()
})
const ms = Date.now() - started
socket.destroy()
const messages = acked * (batch as number)
console.log(JSON.stringify({ messages, bytes: messages * (size as number), ms }))
