// Throughput of the local-kafka broker (a child process, data on disk) with kafkajs and kcat clients.
//   node --conditions=@lookstream/source bench/local-kafka/throughput.ts [--seconds 5]
// Prints a Markdown table: produce and consume msgs/s and MB/s for 200 B and 2 KB messages.
import { spawn } from 'node:child_process'
import { createReadStream, createWriteStream, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { startLocalKafka } from '@lookstream/local-kafka'

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '5' } } })
const SECONDS = Number(args.seconds)
const PARTITIONS = 4
const WORKER = new URL('./producer-worker.ts', import.meta.url).pathname
const RAW_WORKER = new URL('./raw-producer-worker.ts', import.meta.url).pathname

interface Row {
  client: string
  scenario: string
  size: number
  messages: number
  ms: number
  brokerCpu: number
}
const rows: Row[] = []

const broker = await startLocalKafka({ port: 0, logLevel: 'warn' })
const kafka = new Kafka({ brokers: [broker.brokers], clientId: 'bench', logLevel: logLevel.ERROR })
const admin = kafka.admin()
await admin.connect()

// CPU seconds the broker process has used so far (utime + stime from /proc, 100 ticks/s).
function brokerCpuSeconds(): number {
  const fields = readFileSync(`/proc/${broker.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

// Runs a scenario and records its figures, with the broker's CPU use over the same interval.
async function measure(
  client: string,
  scenario: string,
  size: number,
  run: () => Promise<{ messages: number; ms: number }>,
): Promise<void> {
  const cpu0 = brokerCpuSeconds()
  const wall0 = Date.now()
  const { messages, ms } = await run()
  const cpu = brokerCpuSeconds() - cpu0
  rows.push({ client, scenario, size, messages, ms, brokerCpu: cpu / ((Date.now() - wall0) / 1000) })
}

async function createTopic(name: string): Promise<void> {
  await admin.createTopics({ topics: [{ topic: name, numPartitions: PARTITIONS }] })
}

function runWorker(
  topic: string,
  size: number,
  batch: number,
  inflight: number,
  script = WORKER,
  target = broker.brokers,
): Promise<{ messages: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@lookstream/source',
        script,
        target,
        topic,
        String(size),
        String(SECONDS),
        String(batch),
        String(inflight),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.on('data', (b: Buffer) => (out += b.toString()))
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as { messages: number; ms: number })
        : reject(new Error(`worker exited ${code}`)),
    )
  })
}

async function kafkajsProduce(size: number, producers: number): Promise<string> {
  const topic = `bench-kafkajs-${size}-${producers}-${Date.now()}`
  await createTopic(topic)
  const scenario = `produce, ${producers} producer process${producers > 1 ? 'es' : ''}`
  await measure('kafkajs', scenario, size, async () => {
    const results = await Promise.all(Array.from({ length: producers }, () => runWorker(topic, size, 100, 4)))
    return { messages: results.reduce((n, r) => n + r.messages, 0), ms: Math.max(...results.map((r) => r.ms)) }
  })
  return topic
}

// Pre-encoded, pipelined produce requests: the broker's own capacity with a nearly free client.
async function rawProduce(size: number): Promise<void> {
  const topic = `bench-raw-${size}-${Date.now()}`
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  await measure('raw protocol', 'produce, pre-encoded requests, 8 in flight', size, () =>
    runWorker(topic, size, 100, 8, RAW_WORKER, String(broker.port)),
  )
}

async function kafkajsConsume(topic: string, size: number): Promise<void> {
  await measure('kafkajs', 'consume, 1 consumer (eachBatch)', size, () => kafkajsConsumeRun(topic))
}

async function kafkajsConsumeRun(topic: string): Promise<{ messages: number; ms: number }> {
  const offsets = await admin.fetchTopicOffsets(topic)
  const total = offsets.reduce((n, o) => n + Number(o.high), 0)
  const consumer = kafka.consumer({ groupId: `bench-${topic}`, maxWaitTimeInMs: 100, heartbeatInterval: 500 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let seen = 0
  let started = 0
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        if (started === 0) started = Date.now()
        seen += batch.messages.length
        if (seen >= total) resolve()
        await Promise.resolve()
      },
    })
  })
  await done
  const ms = Date.now() - started
  await consumer.disconnect()
  return { messages: seen, ms }
}

// Runs kcat with its output discarded; resolves with the elapsed milliseconds.
function kcat(argv: string[], stdinFile?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn('kcat', argv, { stdio: [stdinFile === undefined ? 'ignore' : 'pipe', 'ignore', 'inherit'] })
    if (stdinFile !== undefined) createReadStream(stdinFile).pipe(child.stdin!)
    child.on('exit', (code) => (code === 0 ? resolve(Date.now() - started) : reject(new Error(`kcat exited ${code}`))))
  })
}

async function kcatProduceConsume(size: number): Promise<void> {
  const count = size < 1000 ? 1_000_000 : 200_000
  const dir = mkdtempSync(join(tmpdir(), 'bench-kcat-'))
  const file = join(dir, 'lines.txt')
  const line = Buffer.alloc(size - 1, 'y').toString() + '\n'
  await new Promise<void>((resolve) => {
    const w = createWriteStream(file)
    const chunk = line.repeat(1000)
    for (let i = 0; i < count / 1000; i++) w.write(chunk)
    w.end(resolve)
  })
  const topic = `bench-kcat-${size}-${Date.now()}`
  await createTopic(topic)
  const producerArgs = ['-b', broker.brokers, '-P', '-t', topic, '-X', 'linger.ms=5', '-X', 'batch.num.messages=10000']
  await measure('kcat', 'produce, 1 kcat', size, async () => ({ messages: count, ms: await kcat(producerArgs, file) }))
  // Two kcat producers at once (to a second topic): what the broker takes when one client is not the limit.
  const topic2 = `${topic}-x2`
  await createTopic(topic2)
  const twoArgs = producerArgs.map((a) => (a === topic ? topic2 : a))
  await measure('kcat', 'produce, 2 kcat at once', size, async () => {
    const ms = await Promise.all([kcat(twoArgs, file), kcat(twoArgs, file)])
    return { messages: 2 * count, ms: Math.max(...ms) }
  })
  const consumerArgs = [
    '-b',
    broker.brokers,
    '-C',
    '-t',
    topic,
    '-o',
    'beginning',
    '-e',
    '-q',
    '-f',
    '%s\n',
    '-c',
    String(count),
  ]
  await measure('kcat', 'consume, 1 kcat', size, async () => ({ messages: count, ms: await kcat(consumerArgs) }))
}

try {
  for (const size of [200, 2048]) {
    const topic = await kafkajsProduce(size, 1)
    await kafkajsConsume(topic, size)
    await kafkajsProduce(size, 3)
    await kcatProduceConsume(size)
    await rawProduce(size)
  }
} finally {
  await admin.disconnect()
  await broker.stop()
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
console.log('| client | scenario | message size | messages | msgs/s | MB/s | broker CPU |')
console.log('|---|---|---:|---:|---:|---:|---:|')
for (const r of rows) {
  const perSec = (r.messages * 1000) / r.ms
  console.log(
    `| ${r.client} | ${r.scenario} | ${r.size} B | ${fmt(r.messages)} | ${fmt(perSec)} | ${((perSec * r.size) / 1e6).toFixed(1)} | ${Math.round(r.brokerCpu * 100)}% |`,
  )
}
