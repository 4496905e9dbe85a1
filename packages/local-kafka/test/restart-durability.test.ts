import { appendFileSync, mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type KafkaMessage } from 'kafkajs'
import { afterEach, describe, expect, it } from 'vitest'
import { startLocalKafka, type LocalKafka } from '../src/index.ts'
import { buildBatch } from '../src/protocol/record-batch-builder.ts'
import { testConsumerConfig, testKafka, uniqueName, waitFor } from './support/kafka-client.ts'
import { RawClient } from './support/raw-client.ts'

async function readAll(brokers: string, topic: string, expected: number): Promise<KafkaMessage[]> {
  const kafka = testKafka(brokers)
  const consumer = kafka.consumer(testConsumerConfig(uniqueName('reader')))
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen: KafkaMessage[] = []
  await consumer.run({ eachMessage: ({ message }) => Promise.resolve(void seen.push(message)) })
  try {
    await waitFor(() => (seen.length >= expected ? true : undefined), 30_000, `${expected} messages`)
  } finally {
    await consumer.disconnect()
  }
  return seen
}

describe('restart and crash durability of the broker process', () => {
  const brokers: LocalKafka[] = []
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((b) => b.stop()))
  })

  async function start(dataDir: string): Promise<LocalKafka> {
    const b = await startLocalKafka({ port: 0, dataDir })
    brokers.push(b)
    return b
  }

  it('keeps data and committed offsets across a clean restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lk-restart-'))
    const topic = uniqueName('restart')
    const groupId = uniqueName('group')
    const first = await start(dataDir)
    const kafka = testKafka(first.brokers)
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, messages: Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })) })
    await producer.disconnect()
    await admin.setOffsets({
      groupId,
      topic,
      partitions: [
        { partition: 0, offset: '3' },
        { partition: 1, offset: '4' },
      ],
    })
    await admin.disconnect()
    await first.stop()

    const second = await start(dataDir)
    expect(second.port).not.toBe(0)
    const admin2 = testKafka(second.brokers).admin()
    await admin2.connect()
    expect(await admin2.listTopics()).toContain(topic)
    const offsets = await admin2.fetchTopicOffsets(topic)
    expect(offsets.reduce((n, o) => n + Number(o.high), 0)).toBe(20)
    const committed = await admin2.fetchOffsets({ groupId, topics: [topic] })
    expect(committed[0]!.partitions.map((p) => [p.partition, p.offset]).sort()).toEqual([
      [0, '3'],
      [1, '4'],
    ])
    await admin2.disconnect()
    const all = await readAll(second.brokers, topic, 20)
    expect(all.map((m) => m.value!.toString()).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`).sort())

    // A consumer of the committed group resumes at the committed offsets.
    const consumer = testKafka(second.brokers).consumer(testConsumerConfig(groupId))
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const resumed: { partition: number; offset: string }[] = []
    await consumer.run({
      eachMessage: ({ partition, message }) =>
        Promise.resolve(void resumed.push({ partition, offset: message.offset })),
    })
    const expectedResumed = offsets.reduce((n, o) => n + Number(o.high), 0) - 3 - 4
    await waitFor(() => (resumed.length >= expectedResumed ? true : undefined), 20_000, 'resumed messages')
    await consumer.disconnect()
    expect(Math.min(...resumed.filter((r) => r.partition === 0).map((r) => Number(r.offset)))).toBe(3)
    expect(Math.min(...resumed.filter((r) => r.partition === 1).map((r) => Number(r.offset)))).toBe(4)
  })

  it('loses no acknowledged acks=-1 message when killed with SIGKILL mid-stream, and truncates a torn tail', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lk-kill-'))
    const topic = uniqueName('kill9')
    const first = await start(dataDir)
    const raw = await RawClient.connect(first.port)
    await raw.request(19, 3, {
      topics: [{ name: topic, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 1000,
    })
    // Several producers pipeline acks=-1 produces; every acknowledged value is recorded.
    const acked: number[] = []
    const ackedBy: number[][] = [[], [], []]
    let next = 0
    let stop = false
    const producers = await Promise.all([0, 1, 2].map(() => RawClient.connect(first.port)))
    const loops = producers.map(async (c, who) => {
      while (!stop) {
        const n = next++
        const batch = buildBatch([{ key: null, value: Buffer.from(`msg-${n}`) }])
        const res = await Promise.race([
          c.request(0, 7, {
            transactionalId: null,
            acks: -1,
            timeoutMs: 1000,
            topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }],
          }),
          new Promise<null>((resolve) => setTimeout(() => resolve(null), 2000)),
        ])
        if (res === null) return
        const part = (res.body.responses as { partitionResponses: { errorCode: number }[] }[])[0]!
          .partitionResponses[0]!
        if (part.errorCode === 0) {
          acked.push(n)
          ackedBy[who]!.push(n)
        }
      }
    })
    await waitFor(() => (acked.length >= 300 ? true : undefined), 20_000, '300 acknowledged produces')
    first.kill('SIGKILL')
    await first.exited
    stop = true
    await Promise.all(loops)
    for (const c of [raw, ...producers]) c.close()
    expect(acked.length).toBeGreaterThanOrEqual(300)

    // Simulate a write torn by a crash: half a batch at the end of the log.
    const partDir = join(dataDir, 'topics', topic, '0')
    const logFile = readdirSync(partDir).find((f) => f.endsWith('.log'))!
    const sizeBefore = statSync(join(partDir, logFile)).size
    const torn = buildBatch([{ key: null, value: Buffer.from('torn') }])
    appendFileSync(join(partDir, logFile), torn.subarray(0, 40))

    const second = await start(dataDir)
    expect(statSync(join(partDir, logFile)).size).toBe(sizeBefore)
    const admin = testKafka(second.brokers).admin()
    await admin.connect()
    const high = Number((await admin.fetchTopicOffsets(topic))[0]!.high)
    await admin.disconnect()
    expect(high).toBeGreaterThanOrEqual(acked.length)
    const stored = (await readAll(second.brokers, topic, high)).map((m) => m.value!.toString())
    expect(stored).toHaveLength(high)
    const storedSet = new Set(stored)
    const missing = acked.filter((n) => !storedSet.has(`msg-${n}`))
    expect(missing).toEqual([])
    // Per producer connection, acknowledged messages appear in the order they were acknowledged.
    const position = new Map(stored.map((v, i) => [v, i]))
    for (const list of ackedBy) {
      const positions = list.map((n) => position.get(`msg-${n}`)!)
      expect(positions).toEqual([...positions].sort((a, b) => a - b))
    }

    // The log continues cleanly after recovery.
    const producer = testKafka(second.brokers).producer()
    await producer.connect()
    const res = await producer.send({ topic, acks: -1, messages: [{ value: 'after-restart' }] })
    await producer.disconnect()
    expect(res[0]!.baseOffset).toBe(String(high))
  })

  it('recognises an idempotent batch retried across a broker crash as a duplicate', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lk-idem-restart-'))
    const topic = uniqueName('idem-restart')
    const first = await start(dataDir)
    const c1 = await RawClient.connect(first.port)
    await c1.request(19, 3, {
      topics: [{ name: topic, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 1000,
    })
    const init = await c1.request(22, 1, { transactionalId: null, transactionTimeoutMs: 60_000 })
    const producerId = init.body.producerId as number
    const batch = (seq: number, value: string): Buffer =>
      buildBatch([{ key: null, value: Buffer.from(value) }], { producerId, producerEpoch: 0, baseSequence: seq })
    const produce = async (c: RawClient, b: Buffer): Promise<{ errorCode: number; baseOffset: number }> => {
      const res = await c.request(0, 7, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 1000,
        topicData: [{ name: topic, partitionData: [{ index: 0, records: b }] }],
      })
      return (res.body.responses as { partitionResponses: { errorCode: number; baseOffset: number }[] }[])[0]!
        .partitionResponses[0]!
    }
    expect(await produce(c1, batch(0, 'a'))).toMatchObject({ errorCode: 0, baseOffset: 0 })
    expect(await produce(c1, batch(1, 'b'))).toMatchObject({ errorCode: 0, baseOffset: 1 })
    c1.close()
    first.kill('SIGKILL')
    await first.exited

    const second = await start(dataDir)
    const c2 = await RawClient.connect(second.port)
    // The producer did not see the ack for sequence 1 and retries it after the crash.
    expect(await produce(c2, batch(1, 'b'))).toMatchObject({ errorCode: 0, baseOffset: 1 })
    expect(await produce(c2, batch(2, 'c'))).toMatchObject({ errorCode: 0, baseOffset: 2 })
    expect((await produce(c2, batch(9, 'gap'))).errorCode).toBe(45)
    c2.close()
  })
})
