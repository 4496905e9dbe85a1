import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { AssignerProtocol, Kafka, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startLocalKafka, type LocalKafka } from '../src/process.ts'

// The consumer-group coordinator over TCP against the broker process, with kafkajs and with librdkafka (kcat)
// as clients: joins, a clean leave, a crashed member, restarts.

const CONSUMER_TIMINGS = {
  sessionTimeout: 6000,
  rebalanceTimeout: 8000,
  heartbeatInterval: 300,
  maxWaitTimeInMs: 200,
  retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 },
}

let broker: LocalKafka
let kafka: Kafka
let admin: Admin
let producer: Producer

beforeAll(async () => {
  broker = await startLocalKafka({ inMemory: true, initialRebalanceDelayMs: 0 })
  kafka = client(broker.brokers, 'group-conformance')
  admin = kafka.admin()
  producer = kafka.producer()
  await admin.connect()
  await producer.connect()
})

afterAll(async () => {
  await producer?.disconnect()
  await admin?.disconnect()
  await broker?.stop()
})

function client(brokers: string, clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100 },
  })
}

let names = 0
function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now()}-${names++}`
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await condition()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function produce(topic: string, partitions: number, values: string[]): Promise<void> {
  await producer.send({
    topic,
    acks: -1,
    messages: values.map((value, i) => ({ value, partition: i % partitions })),
  })
}

/** True once the group's committed offset equals the end of every partition. */
async function allCommitted(adminClient: Admin, groupId: string, topic: string): Promise<boolean> {
  const [ends, committed] = await Promise.all([
    adminClient.fetchTopicOffsets(topic),
    adminClient.fetchOffsets({ groupId, topics: [topic] }),
  ])
  const byPartition = new Map(committed[0]?.partitions.map((p) => [p.partition, p.offset]) ?? [])
  return ends.every((e) => byPartition.get(e.partition) === e.high)
}

interface GroupView {
  state: string
  assignments: Map<string, number[]>
}

async function describe_(adminClient: Admin, groupId: string, topic: string): Promise<GroupView> {
  const { groups } = await adminClient.describeGroups([groupId])
  const group = groups[0]
  const assignments = new Map<string, number[]>()
  for (const m of group?.members ?? []) {
    const decoded = m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null
    assignments.set(
      m.memberId,
      [...(decoded?.assignment[topic] ?? [])].sort((a, b) => a - b),
    )
  }
  return { state: group?.state ?? '', assignments }
}

async function stableWith(adminClient: Admin, groupId: string, topic: string, members: number, partitions: number) {
  let view: GroupView = { state: '', assignments: new Map() }
  await waitFor(`group ${groupId} Stable with ${members} members`, async () => {
    view = await describe_(adminClient, groupId, topic)
    const assigned = [...view.assignments.values()].flat()
    return (
      view.state === 'Stable' &&
      view.assignments.size === members &&
      [...view.assignments.values()].every((p) => p.length > 0) &&
      new Set(assigned).size === partitions &&
      assigned.length === partitions
    )
  })
  return view
}

function startConsumer(kafkaClient: Kafka, groupId: string, topic: string, seen: string[]): Promise<Consumer> {
  const consumer = kafkaClient.consumer({ groupId, ...CONSUMER_TIMINGS })
  return (async () => {
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      eachMessage: ({ message }) => {
        seen.push(message.value?.toString() ?? '')
        return Promise.resolve()
      },
    })
    return consumer
  })()
}

/** A kafkajs consumer in its own process, so it can die without a LeaveGroup. Prints `MSG <value>` per message. */
function startChildConsumer(brokers: string, groupId: string, topic: string, seen: string[]): ChildProcess {
  const kafkajsUrl = pathToFileURL(createRequire(import.meta.url).resolve('kafkajs')).href
  const script = `
    const mod = await import(process.env.KAFKAJS_URL)
    const { Kafka, logLevel } = mod.default ?? mod
    const kafka = new Kafka({ clientId: 'child', brokers: [process.env.BROKERS], logLevel: logLevel.NOTHING })
    const consumer = kafka.consumer({ groupId: process.env.GROUP, ...JSON.parse(process.env.TIMINGS) })
    await consumer.connect()
    await consumer.subscribe({ topic: process.env.TOPIC, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => { process.stdout.write('MSG ' + message.value.toString() + '\\n') } })
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: {
      ...process.env,
      KAFKAJS_URL: kafkajsUrl,
      BROKERS: brokers,
      GROUP: groupId,
      TOPIC: topic,
      TIMINGS: JSON.stringify(CONSUMER_TIMINGS),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let buffered = ''
  child.stdout?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    buffered += chunk
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) if (line.startsWith('MSG ')) seen.push(line.slice(4))
  })
  return child
}

function killOnFinish(child: ChildProcess): void {
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

function counts(values: string[]): Map<string, number> {
  const m = new Map<string, number>()
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1)
  return m
}

function batch(name: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${name}-${i}`)
}

describe('kafkajs consumer group', () => {
  it('consumes every message exactly once across joins, a clean leave, a crashed member and a late join (3 members, 6 partitions)', async () => {
    const topic = unique('group-conf')
    const groupId = unique('g')
    await admin.createTopics({ topics: [{ topic, numPartitions: 6 }] })
    const seenA: string[] = []
    const seenB: string[] = []
    const seenC: string[] = []
    const seenD: string[] = []
    const consumers: Consumer[] = []
    onTestFinished(async () => {
      for (const c of consumers) await c.disconnect().catch(() => undefined)
    })

    const phase1 = batch('joins', 120)
    await produce(topic, 6, phase1)
    consumers.push(await startConsumer(client(broker.brokers, 'member-a'), groupId, topic, seenA))
    const b = await startConsumer(client(broker.brokers, 'member-b'), groupId, topic, seenB)
    consumers.push(b)
    const crashing = startChildConsumer(broker.brokers, groupId, topic, seenC)
    killOnFinish(crashing)

    // Joins: three members share the six partitions, two each.
    const three = await stableWith(admin, groupId, topic, 3, 6)
    expect([...three.assignments.values()].map((p) => p.length)).toEqual([2, 2, 2])
    const phase2 = batch('three-members', 120)
    await produce(topic, 6, phase2)
    await waitFor('phases 1–2 consumed and committed', () => allCommitted(admin, groupId, topic))
    expect(seenC.length).toBeGreaterThan(0)

    // A clean leave: B sends LeaveGroup, the other two take its partitions.
    await b.disconnect()
    consumers.splice(consumers.indexOf(b), 1)
    const two = await stableWith(admin, groupId, topic, 2, 6)
    expect([...two.assignments.values()].map((p) => p.length)).toEqual([3, 3])
    const phase3 = batch('after-leave', 120)
    await produce(topic, 6, phase3)
    await waitFor('phase 3 consumed and committed', () => allCommitted(admin, groupId, topic))

    // A crash: the child dies without LeaveGroup while everything it read is committed (otherwise its
    // uncommitted messages would rightly be read again). Its session expires and A takes over.
    crashing.kill('SIGKILL')
    await exitOf(crashing)
    const phase4 = batch('after-crash', 120)
    await produce(topic, 6, phase4)
    const one = await stableWith(admin, groupId, topic, 1, 6)
    expect([...one.assignments.values()][0]).toEqual([0, 1, 2, 3, 4, 5])
    await waitFor('phase 4 consumed and committed', () => allCommitted(admin, groupId, topic))

    // A late join after the crash.
    consumers.push(await startConsumer(client(broker.brokers, 'member-d'), groupId, topic, seenD))
    await stableWith(admin, groupId, topic, 2, 6)
    const phase5 = batch('late-join', 120)
    await produce(topic, 6, phase5)
    await waitFor('phase 5 consumed and committed', () => allCommitted(admin, groupId, topic))
    expect(seenD.length).toBeGreaterThan(0)

    const all = [...phase1, ...phase2, ...phase3, ...phase4, ...phase5]
    const seen = counts([...seenA, ...seenB, ...seenC, ...seenD])
    expect([...seen.entries()].filter(([, n]) => n !== 1)).toEqual([])
    expect([...seen.keys()].sort()).toEqual([...all].sort())

    for (const c of consumers.splice(0)) await c.disconnect()
    await waitFor(
      'group Empty after the last members left',
      async () => {
        return (await describe_(admin, groupId, topic)).state === 'Empty'
      },
      10_000,
    )
  }, 180_000)
})

describe('kafkajs admin on groups', () => {
  it('lists, describes and deletes groups, refusing to delete one with members', async () => {
    const topic = unique('group-admin')
    const groupId = unique('g')
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    await produce(topic, 2, batch('admin', 4))
    const consumer = await startConsumer(client(broker.brokers, 'admin-member'), groupId, topic, [])
    onTestFinished(() => consumer.disconnect())
    await stableWith(admin, groupId, topic, 1, 2)
    await waitFor('messages committed', () => allCommitted(admin, groupId, topic))

    expect((await admin.listGroups()).groups).toContainEqual({ groupId, protocolType: 'consumer' })
    const { groups } = await admin.describeGroups([groupId])
    expect(groups[0]).toMatchObject({
      groupId,
      state: 'Stable',
      protocolType: 'consumer',
      protocol: 'RoundRobinAssigner',
    })
    expect(groups[0]?.members[0]?.clientId).toBe('admin-member')
    await expect(admin.deleteGroups([groupId])).rejects.toMatchObject({
      name: 'KafkaJSDeleteGroupsError',
      groups: [expect.objectContaining({ groupId, errorCode: 68 })],
    })

    await consumer.disconnect()
    await waitFor('group Empty', async () => (await describe_(admin, groupId, topic)).state === 'Empty', 10_000)
    expect(await admin.deleteGroups([groupId])).toEqual([expect.objectContaining({ groupId, errorCode: 0 })])
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
    expect(offsets[0]?.partitions.map((p) => p.offset)).toEqual(['-1', '-1'])
    expect((await admin.describeGroups([groupId])).groups[0]?.state).toBe('Dead')
    await expect(admin.deleteGroups([groupId])).rejects.toMatchObject({
      groups: [expect.objectContaining({ groupId, errorCode: 69 })],
    })
  }, 60_000)
})

describe('committed offsets and restarts', () => {
  it('keeps committed offsets across a broker kill -9 and restart on the same data dir', async () => {
    const own = await startLocalKafka({ initialRebalanceDelayMs: 0 })
    let current = own
    onTestFinished(() => current.stop())
    const dataDir = own.dataDir
    expect(dataDir).toBeDefined()
    const topic = unique('restart')
    const groupId = unique('g')
    const first = client(own.brokers, 'before-restart')
    const firstAdmin = first.admin()
    const firstProducer = first.producer()
    await firstAdmin.connect()
    await firstProducer.connect()
    await firstAdmin.createTopics({ topics: [{ topic, numPartitions: 3 }] })
    await firstProducer.send({
      topic,
      acks: -1,
      messages: batch('old', 30).map((value, i) => ({ value, partition: i % 3 })),
    })
    const seenBefore: string[] = []
    const consumer = await startConsumer(first, groupId, topic, seenBefore)
    await waitFor('old messages committed', () => allCommitted(firstAdmin, groupId, topic))
    const committedBefore = await firstAdmin.fetchOffsets({ groupId, topics: [topic] })
    expect(committedBefore[0]?.partitions.map((p) => p.offset).sort()).toEqual(['10', '10', '10'])
    await consumer.disconnect()
    await firstProducer.disconnect()
    await firstAdmin.disconnect()

    own.kill('SIGKILL')
    await own.exited
    current = await startLocalKafka({ dataDir, initialRebalanceDelayMs: 0 })

    const second = client(current.brokers, 'after-restart')
    const secondAdmin = second.admin()
    const secondProducer = second.producer()
    await secondAdmin.connect()
    await secondProducer.connect()
    onTestFinished(async () => {
      await secondProducer.disconnect()
      await secondAdmin.disconnect()
    })
    expect(await secondAdmin.fetchOffsets({ groupId, topics: [topic] })).toEqual(committedBefore)
    const listed = await secondAdmin.listGroups()
    expect(listed.groups).toContainEqual({ groupId, protocolType: '' })

    // The group resumes where it left off: only the new messages arrive.
    await secondProducer.send({
      topic,
      acks: -1,
      messages: batch('new', 9).map((value, i) => ({ value, partition: i % 3 })),
    })
    const seenAfter: string[] = []
    const resumed = await startConsumer(second, groupId, topic, seenAfter)
    onTestFinished(() => resumed.disconnect())
    await waitFor('new messages committed', () => allCommitted(secondAdmin, groupId, topic))
    expect([...seenAfter].sort()).toEqual(batch('new', 9).sort())
  }, 120_000)
})

/** A kcat balanced consumer (librdkafka KafkaConsumer) printing `<partition> <value>` lines into `lines`. */
function startKcat(groupId: string, topic: string, lines: string[], extra: string[] = []): ChildProcess {
  const child = spawn(
    'kcat',
    [
      '-b',
      broker.brokers,
      '-G',
      groupId,
      '-q',
      '-u',
      '-f',
      '%p %s\\n',
      '-X',
      'auto.offset.reset=earliest',
      '-X',
      'session.timeout.ms=30000',
      '-X',
      'heartbeat.interval.ms=500',
      '-X',
      'max.poll.interval.ms=30000',
      ...extra,
      topic,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  killOnFinish(child)
  let buffered = ''
  child.stdout?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    buffered += chunk
    const parts = buffered.split('\n')
    buffered = parts.pop() ?? ''
    lines.push(...parts.filter(Boolean))
  })
  return child
}

const valueOfLine = (line: string) => line.slice(line.indexOf(' ') + 1)
const partitionOfLine = (line: string) => Number(line.split(' ')[0])

describe('kcat (librdkafka) balanced consumer group', () => {
  it('shares the partitions between 2 kcat members that together read everything', async () => {
    const topic = unique('kcat-group')
    const groupId = unique('g')
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })
    const before = batch('before', 100)
    await produce(topic, 4, before)

    const outputs: string[][] = [[], []]
    const kcats = outputs.map((lines) => startKcat(groupId, topic, lines))

    const view = await stableWith(admin, groupId, topic, 2, 4)
    expect([...view.assignments.values()].map((p) => p.length)).toEqual([2, 2])
    const after = batch('after', 100)
    await produce(topic, 4, after)
    const everything = [...before, ...after]
    const values = () => new Set(outputs.flat().map(valueOfLine))
    await waitFor('kcat members read every message', () => everything.every((v) => values().has(v)))

    // Each member printed messages of its own partitions only (as of the final generation).
    const partitionsOf = (lines: string[], values: string[]) =>
      new Set(lines.filter((l) => values.includes(l.slice(l.indexOf(' ') + 1))).map((l) => Number(l.split(' ')[0])))
    const [first = new Set<number>(), second = new Set<number>()] = outputs.map((lines) => partitionsOf(lines, after))
    expect(first.size).toBeGreaterThan(0)
    expect(second.size).toBeGreaterThan(0)
    expect([...first].filter((p) => second.has(p))).toEqual([])

    // SIGTERM makes kcat close its consumer, which sends LeaveGroup: the group empties long before
    // the 30 s session timeout could have removed the members.
    const stoppedAt = Date.now()
    for (const child of kcats) child.kill('SIGTERM')
    await Promise.all(kcats.map(exitOf))
    await waitFor(
      'group Empty after kcat members left',
      async () => {
        return (await describe_(admin, groupId, topic)).state === 'Empty'
      },
      20_000,
    )
    expect(Date.now() - stoppedAt).toBeLessThan(30_000)
  }, 120_000)

  it('keeps a restarted static kcat member (group.instance.id) in place without a rebalance', async () => {
    const topic = unique('kcat-static')
    const groupId = unique('g')
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })
    const before = batch('static-before', 40)
    await produce(topic, 4, before)
    const linesA: string[] = []
    const linesB: string[] = []
    const memberA = startKcat(groupId, topic, linesA, ['-X', 'group.instance.id=inst-a'])
    let memberB = startKcat(groupId, topic, linesB, ['-X', 'group.instance.id=inst-b'])
    const first = await stableWith(admin, groupId, topic, 2, 4)
    const idOf = (view: GroupView, instance: string) =>
      [...view.assignments.keys()].find((id) => id.startsWith(instance))
    const oldB = idOf(first, 'inst-b-') ?? ''
    const partitionsB = first.assignments.get(oldB)
    await waitFor('both members read the first batch', () => {
      const seen = new Set([...linesA, ...linesB].map(valueOfLine))
      return before.every((v) => seen.has(v))
    })

    // A static member does not send LeaveGroup when it stops; its successor takes its place.
    const states = new Set<string>()
    let polling = true
    const poller = (async () => {
      while (polling) {
        states.add((await describe_(admin, groupId, topic)).state)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()
    memberB.kill('SIGTERM')
    await exitOf(memberB)
    expect((await describe_(admin, groupId, topic)).assignments.has(oldB)).toBe(true)
    const linesB2: string[] = []
    memberB = startKcat(groupId, topic, linesB2, ['-X', 'group.instance.id=inst-b'])
    let second: GroupView = first
    await waitFor('the restarted instance holds the old place', async () => {
      second = await describe_(admin, groupId, topic)
      const newB = idOf(second, 'inst-b-')
      return newB !== undefined && newB !== oldB
    })
    const after = batch('static-after', 40)
    await produce(topic, 4, after)
    await waitFor('the restarted member reads its partitions', () => {
      const seen = new Set([...linesA, ...linesB2].map(valueOfLine))
      return after.every((v) => seen.has(v))
    })
    polling = false
    await poller

    expect(states).toEqual(new Set(['Stable']))
    expect(idOf(second, 'inst-a-')).toBe(idOf(first, 'inst-a-'))
    expect(second.assignments.get(idOf(second, 'inst-b-') ?? '')).toEqual(partitionsB)
    const readByB2 = new Set(linesB2.filter((l) => after.includes(valueOfLine(l))).map(partitionOfLine))
    expect([...readByB2].sort()).toEqual(partitionsB)
    memberA.kill('SIGTERM')
    memberB.kill('SIGTERM')
    await Promise.all([exitOf(memberA), exitOf(memberB)])
  }, 120_000)

  it('lets a kcat consumer resume from the offsets a kafkajs group committed', async () => {
    const topic = unique('handoff')
    const groupId = unique('g')
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    const first = batch('kafkajs-part', 20)
    await produce(topic, 2, first)
    const seenByKafkajs: string[] = []
    const consumer = await startConsumer(client(broker.brokers, 'handoff'), groupId, topic, seenByKafkajs)
    onTestFinished(() => consumer.disconnect())
    await waitFor('kafkajs committed the first part', () => allCommitted(admin, groupId, topic))
    await consumer.disconnect()
    await waitFor('group Empty', async () => (await describe_(admin, groupId, topic)).state === 'Empty', 10_000)

    const second = batch('kcat-part', 20)
    await produce(topic, 2, second)
    const lines: string[] = []
    const kcat = startKcat(groupId, topic, lines)
    await waitFor('kcat read the second part', () => second.every((v) => lines.map(valueOfLine).includes(v)))
    kcat.kill('SIGTERM')
    await exitOf(kcat)
    expect([...seenByKafkajs].sort()).toEqual([...first].sort())
    expect(lines.map(valueOfLine).sort()).toEqual([...second].sort())
  }, 60_000)

  it('refuses a kcat member into a kafkajs group that shares no assignor (INCONSISTENT_GROUP_PROTOCOL)', async () => {
    const topic = unique('mixed')
    const groupId = unique('g')
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    const consumer = await startConsumer(client(broker.brokers, 'mixed'), groupId, topic, [])
    onTestFinished(() => consumer.disconnect())
    const before = await stableWith(admin, groupId, topic, 1, 2)
    const kcat = startKcat(groupId, topic, [])
    let stderr = ''
    kcat.stderr?.setEncoding('utf8')
    kcat.stderr?.on('data', (chunk: string) => (stderr += chunk))
    await waitFor('kcat reports the refused join', () => stderr.includes('Inconsistent group protocol'), 20_000)
    kcat.kill('SIGTERM')
    await exitOf(kcat)
    const after = await describe_(admin, groupId, topic)
    expect(after.state).toBe('Stable')
    expect([...after.assignments.keys()]).toEqual([...before.assignments.keys()])
  }, 60_000)
})
