import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import {
  createKafka,
  createProducer,
  ensureTopics,
  runConsumer,
  type ConsumedRecord,
  type ConsumerRunner,
  type KafkaClient,
  type LookstreamProducer,
  type RunConsumerOptions,
} from '../src/index.ts'
import { testBrokers, testLogger, uniqueName, waitFor } from './test-broker.ts'

let kafka: KafkaClient
let producer: LookstreamProducer

beforeAll(async () => {
  kafka = createKafka({ brokers: testBrokers(), clientId: 'kafka-consumer-test', logger: testLogger })
  producer = await createProducer(kafka, { lingerMs: 1 })
})

afterAll(async () => {
  await producer?.close()
})

async function produce(topic: string, values: string[], partition = 0): Promise<void> {
  await Promise.all(values.map((value) => producer.send({ topic, key: null, value, partition })))
}

async function consumer(options: Omit<RunConsumerOptions, 'kafka' | 'logger'>): Promise<ConsumerRunner> {
  const runner = await runConsumer({ ...options, kafka, logger: testLogger })
  onTestFinished(() => runner.stop())
  return runner
}

function values(records: ConsumedRecord[]): string[] {
  return records.map((record) => record.value?.toString() ?? '')
}

describe('runConsumer', () => {
  it('commits only marked offsets: a restarted member resumes after the last contiguous mark', async () => {
    const topic = uniqueName('marks')
    const groupId = uniqueName('group')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    await produce(topic, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'])

    const seen: ConsumedRecord[] = []
    const first = await consumer({
      groupId,
      topics: [topic],
      fromBeginning: true,
      eachBatch: (batch) => {
        seen.push(...batch.records)
        // 0..3 are done, 5 is done out of order, 4 is not: the commit must stop at 4.
        for (const record of batch.records)
          if (['0', '1', '2', '3', '5'].includes(record.offset)) batch.markDone(record)
      },
    })
    await waitFor('all 8 records', () => seen.length === 8)
    await first.commit()
    expect(first.partitions()).toMatchObject([{ topic, partition: 0, committed: '4', pending: 3, position: '8' }])
    await first.stop()

    const again: ConsumedRecord[] = []
    await consumer({
      groupId,
      topics: [topic],
      fromBeginning: true,
      eachBatch: (batch) => {
        again.push(...batch.records)
        for (const record of batch.records) batch.markDone(record)
      },
    })
    await waitFor('the redelivered records', () => again.length >= 4)
    expect(values(again)).toEqual(['m4', 'm5', 'm6', 'm7'])
  })

  it('lets the handler mark records done after it returned, and stop() drains and commits them', async () => {
    const topic = uniqueName('async-marks')
    const groupId = uniqueName('group')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    await produce(topic, ['a', 'b', 'c'])

    const inFlight: ConsumedRecord[] = []
    const runner = await consumer({
      groupId,
      topics: [topic],
      fromBeginning: true,
      eachBatch: (batch) => {
        inFlight.push(...batch.records) // "deliveries" that finish later, outside the handler
      },
    })
    await waitFor('3 records taken', () => inFlight.length === 3)
    expect(runner.partitions()[0]).toMatchObject({ pending: 3 })
    await runner.stop({
      drain: () => {
        for (const record of inFlight.splice(0)) runner.markDone(record)
      },
    })

    const after: ConsumedRecord[] = []
    await produce(topic, ['d'])
    await consumer({
      groupId,
      topics: [topic],
      fromBeginning: true,
      eachBatch: (batch) => {
        after.push(...batch.records)
        for (const record of batch.records) batch.markDone(record)
      },
    })
    await waitFor('the record after the drained ones', () => after.length >= 1)
    expect(values(after)).toEqual(['d'])
  })

  it('pauses a partition (stopAt + pause) while others flow, and resumes where it stopped', async () => {
    const topic = uniqueName('pause')
    await ensureTopics(kafka, [{ topic, numPartitions: 2 }])
    await produce(topic, ['p0-0', 'p0-1', 'p0-2'], 0)

    const got: ConsumedRecord[] = []
    let pausedOnce = false
    const runner = await consumer({
      groupId: uniqueName('group'),
      topics: [topic],
      fromBeginning: true,
      eachBatch: (batch) => {
        if (batch.partition === 0 && !pausedOnce) {
          // The window holds one record: take the first, give the rest back, pause the partition.
          pausedOnce = true
          got.push(batch.records[0]!)
          batch.markDone(batch.records[0]!)
          if (batch.records.length > 1) batch.stopAt(batch.records[1]!.offset)
          batch.pause()
          return
        }
        got.push(...batch.records)
        for (const record of batch.records) batch.markDone(record)
      },
    })
    await waitFor('the first record of partition 0', () => got.length === 1)
    expect(runner.isPaused(topic, 0)).toBe(true)

    // Partition 0 gets more records, then partition 1 gets one. Once partition 1's record has arrived,
    // the consumer has fetched since partition 0's records were written: they stayed back only because
    // partition 0 is paused.
    await produce(topic, ['p0-3'], 0)
    await produce(topic, ['p1-0'], 1)
    await waitFor('the record on partition 1', () => got.some((record) => record.partition === 1))
    expect(values(got)).toEqual(['p0-0', 'p1-0'])

    runner.resume(topic, 0)
    await waitFor('partition 0 after resume', () => got.length === 5)
    expect(values(got.filter((record) => record.partition === 0))).toEqual(['p0-0', 'p0-1', 'p0-2', 'p0-3'])
    expect(runner.isPaused(topic, 0)).toBe(false)
  })

  it('hands a batch out again when its handler threw', async () => {
    const topic = uniqueName('throws')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    await produce(topic, ['x0', 'x1'])

    const attempts: string[][] = []
    const runner = await consumer({
      groupId: uniqueName('group'),
      topics: [topic],
      fromBeginning: true,
      eachBatch: (batch) => {
        attempts.push(values(batch.records))
        batch.markDone(batch.records[0]!)
        if (attempts.length === 1) throw new Error('transient handler failure')
        for (const record of batch.records) batch.markDone(record)
      },
    })
    await waitFor('a second attempt', () => attempts.length >= 2)
    expect(attempts[0]).toEqual(['x0', 'x1'])
    expect(attempts[1]).toEqual(['x0', 'x1'])
    await runner.commit()
    expect(runner.partitions()).toMatchObject([{ committed: '2', pending: 0 }])
  })

  it('survives a rebalance: kept partitions are not handed out twice, lost ones resume from the marks', async () => {
    const topic = uniqueName('rebalance')
    const groupId = uniqueName('group')
    await ensureTopics(kafka, [{ topic, numPartitions: 2 }])
    await produce(topic, ['p0-0', 'p0-1'], 0)
    await produce(topic, ['p1-0', 'p1-1'], 1)
    const fast = { heartbeatIntervalMs: 100, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000 }

    const seenByA: ConsumedRecord[] = []
    const a = await consumer({
      ...fast,
      groupId,
      topics: [topic],
      fromBeginning: true,
      eachBatch: (batch) => {
        seenByA.push(...batch.records)
        // Only the first record of each partition is done; the second stays in A's hands.
        for (const record of batch.records) if (record.offset === '0') batch.markDone(record)
      },
    })
    await waitFor('A to take all four records', () => seenByA.length === 4)
    await a.commit()

    const seenByB: ConsumedRecord[] = []
    const b = await consumer({
      ...fast,
      groupId,
      topics: [topic],
      fromBeginning: true,
      eachBatch: (batch) => {
        seenByB.push(...batch.records)
        for (const record of batch.records) batch.markDone(record)
      },
    })
    await waitFor('the partitions to be shared', () => a.assignment().length === 1 && b.assignment().length === 1)
    const kept = a.assignment()[0]!.partition
    const lost = b.assignment()[0]!.partition

    // B starts the partition A lost from A's last mark: the record A never finished, nothing before it.
    await waitFor('B to get the unfinished record', () => seenByB.length >= 1)
    expect(values(seenByB)).toEqual([`p${lost}-1`])

    // A goes on after the records it still holds on the partition it kept, instead of refetching them.
    await produce(topic, [`p${kept}-2`], kept)
    await waitFor('A to get the new record', () => seenByA.some((r) => r.value?.toString() === `p${kept}-2`))
    expect(values(seenByA.filter((record) => record.partition === kept))).toEqual([
      `p${kept}-0`,
      `p${kept}-1`,
      `p${kept}-2`,
    ])
    // A late mark for the lost partition is ignored: A no longer tracks it.
    a.markDone({ topic, partition: lost, offset: '1' })
    expect(a.partitions().map((state) => state.partition)).toEqual([kept])
  })

  it('stop() lets the batch in progress finish, commits its marks, and leaves the group at once', async () => {
    const topic = uniqueName('stop')
    const groupId = uniqueName('group')
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    await produce(topic, ['s0', 's1'])

    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let inHandler = false
    // A long session: if stop() did not leave the group, the next member would wait for it to expire.
    const slow = { sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 60_000 }
    const first = await consumer({
      ...slow,
      groupId,
      topics: [topic],
      fromBeginning: true,
      eachBatch: async (batch) => {
        inHandler = true
        await gate
        for (const record of batch.records) batch.markDone(record)
      },
    })
    await waitFor('the handler to be running', () => inHandler)
    let stopped = false
    const stopping = first.stop().then(() => (stopped = true))
    await new Promise((resolve) => setImmediate(resolve))
    expect(stopped).toBe(false)
    release()
    await stopping

    await produce(topic, ['s2'])
    const next: ConsumedRecord[] = []
    const second = await consumer({
      ...slow,
      groupId,
      topics: [topic],
      fromBeginning: true,
      eachBatch: (batch) => {
        next.push(...batch.records)
        for (const record of batch.records) batch.markDone(record)
      },
    })
    await waitFor('the next member to take over', () => next.length >= 1, 20_000)
    expect(values(next)).toEqual(['s2'])
    expect(second.assignment()).toEqual([{ topic, partition: 0 }])
  })
})
