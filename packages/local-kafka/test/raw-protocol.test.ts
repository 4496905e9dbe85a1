import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLocalKafka, type LocalKafka } from '../src/index.ts'
import { buildBatch, countRecords } from '../src/protocol/record-batch-builder.ts'
import { uniqueName } from './support/kafka-client.ts'
import { RawClient } from './support/raw-client.ts'

const PRODUCE = 0
const FETCH = 1
const METADATA = 3
const API_VERSIONS = 18
const INIT_PRODUCER_ID = 22
const CREATE_TOPICS = 19

type Obj = Record<string, unknown>
const arr = (v: unknown): Obj[] => v as Obj[]

describe('raw protocol against the broker process', () => {
  let broker: LocalKafka
  const clients: RawClient[] = []

  beforeAll(async () => {
    broker = await startLocalKafka({ port: 0 })
  })
  afterEach(() => {
    for (const c of clients.splice(0)) c.close()
  })
  afterAll(async () => {
    await broker?.stop()
  })

  async function client(): Promise<RawClient> {
    const c = await RawClient.connect(broker.port)
    clients.push(c)
    return c
  }

  async function createTopic(c: RawClient, name: string, partitions = 1): Promise<void> {
    const res = await c.request(CREATE_TOPICS, 3, {
      topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 1000,
    })
    expect(arr(res.body.topics)[0]!.errorCode).toBe(0)
  }

  function produceBody(topic: string, batch: Buffer, acks = -1): Obj {
    return {
      transactionalId: null,
      acks,
      timeoutMs: 1000,
      topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }],
    }
  }

  function partitionResult(body: Obj): Obj {
    return arr(arr(body.responses)[0]!.partitionResponses)[0]!
  }

  async function fetchFrom(
    c: RawClient,
    topic: string,
    offset: number,
    opts: { maxWaitMs?: number; minBytes?: number } = {},
  ) {
    const res = await c.request(FETCH, 11, {
      replicaId: -1,
      maxWaitMs: opts.maxWaitMs ?? 0,
      minBytes: opts.minBytes ?? 1,
      maxBytes: 10_000_000,
      isolationLevel: 1,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic,
          partitions: [
            {
              partition: 0,
              currentLeaderEpoch: -1,
              fetchOffset: offset,
              logStartOffset: -1,
              partitionMaxBytes: 1_000_000,
            },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    })
    const p = arr(arr(res.body.responses)[0]!.partitions)[0]!
    const records = Buffer.concat((p.records as Buffer | null) === null ? [] : [p.records as Buffer])
    return { partition: p, records }
  }

  it('answers every advertised API version range in ApiVersions v3 (flexible) and v0', async () => {
    const c = await client()
    const v3 = await c.request(API_VERSIONS, 3, { clientSoftwareName: 'raw-test', clientSoftwareVersion: '1.0' })
    expect(v3.body.errorCode).toBe(0)
    const ranges: Record<string, unknown> = Object.fromEntries(
      arr(v3.body.apiKeys).map((k) => [String(k.apiKey), [k.minVersion, k.maxVersion]] as const),
    )
    expect(ranges).toEqual({
      0: [3, 7],
      1: [4, 11],
      2: [1, 3],
      3: [0, 6],
      8: [2, 7],
      9: [1, 5],
      10: [0, 2],
      11: [0, 5],
      12: [0, 3],
      13: [0, 3],
      14: [0, 3],
      15: [0, 2],
      16: [0, 2],
      18: [0, 3],
      19: [0, 4],
      20: [0, 1],
      22: [0, 1],
      32: [0, 2],
      33: [0, 1],
      42: [0, 1],
    })
    const v0 = await c.request(API_VERSIONS, 0, {})
    expect(arr(v0.body.apiKeys)).toHaveLength(20)
  })

  it('answers an unsupported ApiVersions version with error 35 in the v0 layout and keeps the connection', async () => {
    const c = await client()
    const frame = Buffer.alloc(4 + 2 + 2 + 4 + 2)
    frame.writeInt32BE(frame.length - 4, 0)
    frame.writeInt16BE(API_VERSIONS, 4)
    frame.writeInt16BE(9, 6)
    frame.writeInt32BE(77, 8)
    frame.writeInt16BE(-1, 12)
    const res = await c.sendRaw(frame)
    expect(res.readInt32BE(0)).toBe(77)
    expect(res.readInt16BE(4)).toBe(35)
    expect(res.readInt32BE(6)).toBe(20) // the full api_keys array follows
    const again = await c.request(METADATA, 6, { topics: [], allowAutoTopicCreation: false })
    expect(again.body.controllerId).toBe(0)
    expect(c.closed).toBe(false)
  })

  it('answers an unsupported version of another API with UNSUPPORTED_VERSION and keeps the connection', async () => {
    const c = await client()
    // Fetch v3 is below the advertised minimum 4 (record batch v2 needs v4).
    const res = await c.request(FETCH, 3, { replicaId: -1, maxWaitMs: 0, minBytes: 1, topics: [] })
    expect(res.correlationId).toBeGreaterThan(0)
    const unknownKey = Buffer.alloc(14)
    unknownKey.writeInt32BE(10, 0)
    unknownKey.writeInt16BE(999, 4)
    unknownKey.writeInt16BE(0, 6)
    unknownKey.writeInt32BE(4242, 8)
    unknownKey.writeInt16BE(-1, 12)
    const raw = await c.sendRaw(unknownKey)
    expect(raw.readInt32BE(0)).toBe(4242)
    expect(raw.readInt16BE(4)).toBe(35)
    const ok = await c.request(API_VERSIONS, 2, {})
    expect(ok.body.errorCode).toBe(0)
    expect(c.closed).toBe(false)
  })

  it('answers Metadata in old and new versions: all topics, unknown and invalid names, auto-creation', async () => {
    const c = await client()
    const topic = uniqueName('meta')
    await createTopic(c, topic, 2)
    // v0 spells "all topics" as an empty list, v1+ as null (an empty list there means none).
    const v0 = await c.request(METADATA, 0, { topics: [] })
    expect(arr(v0.body.topics).map((t) => t.name)).toContain(topic)
    const v1none = await c.request(METADATA, 1, { topics: [] })
    expect(arr(v1none.body.topics)).toEqual([])
    const v5all = await c.request(METADATA, 5, { topics: null, allowAutoTopicCreation: false })
    expect(arr(v5all.body.topics).map((t) => t.name)).toContain(topic)
    const missing = uniqueName('missing')
    const v4 = await c.request(METADATA, 4, {
      topics: [{ name: missing }, { name: 'bad/name' }, { name: topic }],
      allowAutoTopicCreation: false,
    })
    expect(arr(v4.body.topics).map((t) => [t.name, t.errorCode])).toEqual([
      [missing, 3],
      ['bad/name', 17],
      [topic, 0],
    ])
    const created = await c.request(METADATA, 6, { topics: [{ name: missing }], allowAutoTopicCreation: true })
    expect(arr(arr(created.body.topics)[0]!.partitions)).toHaveLength(1)
    expect(arr(created.body.brokers)).toEqual([{ nodeId: 0, host: '127.0.0.1', port: broker.port, rack: null }])
  })

  it('stores a retried idempotent batch once and returns its original offset', async () => {
    const c = await client()
    const topic = uniqueName('idem')
    await createTopic(c, topic)
    const init = await c.request(INIT_PRODUCER_ID, 1, { transactionalId: null, transactionTimeoutMs: 60_000 })
    expect(init.body.errorCode).toBe(0)
    const producerId = init.body.producerId as number
    const records = [
      { key: null, value: Buffer.from('a') },
      { key: null, value: Buffer.from('b') },
    ]
    const first = buildBatch(records, { producerId, producerEpoch: 0, baseSequence: 0 })
    const r1 = partitionResult((await c.request(PRODUCE, 7, produceBody(topic, Buffer.from(first)))).body)
    expect(r1).toMatchObject({ errorCode: 0, baseOffset: 0 })
    // The same bytes again, as a producer retrying after a lost response.
    const r2 = partitionResult((await c.request(PRODUCE, 7, produceBody(topic, Buffer.from(first)))).body)
    expect(r2).toMatchObject({ errorCode: 0, baseOffset: 0 })
    const next = buildBatch([{ key: null, value: Buffer.from('c') }], { producerId, producerEpoch: 0, baseSequence: 2 })
    const r3 = partitionResult((await c.request(PRODUCE, 7, produceBody(topic, next))).body)
    expect(r3).toMatchObject({ errorCode: 0, baseOffset: 2 })
    // A gap in the sequence is refused.
    const gap = buildBatch([{ key: null, value: Buffer.from('d') }], { producerId, producerEpoch: 0, baseSequence: 7 })
    const r4 = partitionResult((await c.request(PRODUCE, 7, produceBody(topic, gap))).body)
    expect(r4.errorCode).toBe(45)

    const { partition, records: stored } = await fetchFrom(c, topic, 0)
    expect(partition.highWatermark).toBe(3)
    expect(countRecords(stored)).toEqual({ batches: 2, records: 3, baseOffsets: [0, 2] })
  })

  it('rejects a batch with a bad CRC as CORRUPT_MESSAGE', async () => {
    const c = await client()
    const topic = uniqueName('crc')
    await createTopic(c, topic)
    const batch = buildBatch([{ key: null, value: Buffer.from('payload') }])
    batch.writeUInt8(batch.readUInt8(batch.length - 1) ^ 0xff, batch.length - 1)
    const r = partitionResult((await c.request(PRODUCE, 7, produceBody(topic, batch))).body)
    expect(r.errorCode).toBe(2)
    expect((await fetchFrom(c, topic, 0)).partition.highWatermark).toBe(0)
  })

  it('stores batches byte for byte, patching only the base offset and leader epoch', async () => {
    const c = await client()
    const topic = uniqueName('verbatim')
    await createTopic(c, topic)
    await c.request(PRODUCE, 7, produceBody(topic, buildBatch([{ key: null, value: Buffer.from('x') }])))
    const sent = buildBatch([{ key: Buffer.from('k'), value: Buffer.from('v'), headers: [['h', Buffer.from('1')]] }])
    await c.request(PRODUCE, 7, produceBody(topic, Buffer.from(sent)))
    const { records } = await fetchFrom(c, topic, 1)
    expect(records.length).toBe(sent.length)
    expect(records.readBigInt64BE(0)).toBe(1n)
    expect(records.readInt32BE(12)).toBe(0)
    expect(records.subarray(16).equals(sent.subarray(16))).toBe(true)
  })

  it('parks a fetch until data arrives and answers at max wait when none does', async () => {
    const c = await client()
    const producer = await client()
    const topic = uniqueName('longpoll')
    await createTopic(c, topic)
    const t0 = Date.now()
    const empty = await fetchFrom(c, topic, 0, { maxWaitMs: 400 })
    const waited = Date.now() - t0
    expect(empty.records.length).toBe(0)
    expect(waited).toBeGreaterThanOrEqual(380)
    expect(waited).toBeLessThan(5000)

    const t1 = Date.now()
    const parked = fetchFrom(c, topic, 0, { maxWaitMs: 10_000 })
    // Gives the fetch time to park; if it had not, it would still return the data, so the assertions hold.
    await new Promise((r) => setTimeout(r, 100))
    await producer.request(PRODUCE, 7, produceBody(topic, buildBatch([{ key: null, value: Buffer.from('wake') }])))
    const woke = await parked
    expect(countRecords(woke.records).records).toBe(1)
    expect(Date.now() - t1).toBeLessThan(5000)
  })

  it('rotates which partition gets a tight fetch budget, so none starves', async () => {
    const c = await client()
    const topic = uniqueName('rotate')
    await createTopic(c, topic, 2)
    for (const index of [0, 1]) {
      const batch = buildBatch([{ key: null, value: Buffer.alloc(2000, index) }])
      await c.request(PRODUCE, 7, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 1000,
        topicData: [{ name: topic, partitionData: [{ index, records: batch }] }],
      })
    }
    // maxBytes fits one batch: each fetch returns exactly one partition's data.
    const served: number[] = []
    for (let i = 0; i < 2; i++) {
      const res = await c.request(FETCH, 11, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 1000,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [
          {
            topic,
            partitions: [0, 1].map((partition) => ({ partition, fetchOffset: 0, partitionMaxBytes: 1_000_000 })),
          },
        ],
        forgottenTopicsData: [],
        rackId: '',
      })
      const parts = arr(arr(res.body.responses)[0]!.partitions)
      const withData = parts.filter((p) => (p.records as Buffer).length > 0).map((p) => p.partitionIndex as number)
      expect(withData).toHaveLength(1)
      served.push(withData[0]!)
    }
    expect(served.sort()).toEqual([0, 1])
  })

  it('answers a parked fetch at once when its topic is deleted', async () => {
    const c = await client()
    const admin = await client()
    const topic = uniqueName('deleted')
    await createTopic(c, topic)
    const t0 = Date.now()
    const parked = fetchFrom(c, topic, 0, { maxWaitMs: 20_000 })
    // As above: a fetch that had not parked yet sees the deleted topic directly.
    await new Promise((r) => setTimeout(r, 100))
    const del = await admin.request(20, 1, { topicNames: [topic], timeoutMs: 1000 })
    expect(arr(del.body.responses)[0]!.errorCode).toBe(0)
    const res = await parked
    expect(res.partition.errorCode).toBe(3)
    expect(Date.now() - t0).toBeLessThan(10_000)
  })

  it('keeps responses in request order on one connection even when the first request parks', async () => {
    const c = await client()
    const topic = uniqueName('order')
    await createTopic(c, topic)
    const parked = fetchFrom(c, topic, 0, { maxWaitMs: 300 })
    const meta = c.request(METADATA, 6, { topics: [{ name: topic }], allowAutoTopicCreation: false })
    const [fetched, described] = await Promise.all([parked, meta])
    expect(fetched.records.length).toBe(0)
    expect(arr(described.body.topics)[0]!.name).toBe(topic)
    // The fetch (sent first with the previous correlation id, parked 300 ms) is answered before the
    // metadata request sent after it.
    expect(c.arrivals.slice(-2)).toEqual([described.correlationId - 1, described.correlationId])
  })

  it('sends no response to acks=0 produce but stores the batch', async () => {
    const c = await client()
    const topic = uniqueName('acks0raw')
    await createTopic(c, topic)
    c.sendNoResponse(PRODUCE, 7, produceBody(topic, buildBatch([{ key: null, value: Buffer.from('q') }]), 0))
    // The next response on this connection must be the metadata one, not a produce response.
    const meta = await c.request(METADATA, 6, { topics: [{ name: topic }], allowAutoTopicCreation: false })
    expect(arr(meta.body.topics)[0]!.name).toBe(topic)
    expect((await fetchFrom(c, topic, 0)).partition.highWatermark).toBe(1)
  })
})
