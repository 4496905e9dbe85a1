// A Recurly Engage send of --rows rows (comma-separated list: one fresh stack per size) to one CSV in S3:
// local-kafka (data on disk), redis-server and s3rver on loopback; the recurly-engage service run as its start
// script runs it (compiled, with its Node flags). The rows are produced as the ingress would (keyed by user over
// 6 partitions, send-id header) while the service consumes them; the send's `finished` event follows the last
// row's acknowledgement. Reported per size: rows/s from the first row produced to the file visible, the
// producer's own rate, the time from the last row acknowledged to the file visible (its upload completed), the
// service's peak RSS (VmHWM: overall, and once every row is staged, before composing) and CPU; the file is then
// read back and its rows counted.
//
//   node --conditions=@lookstream/source bench/recurly-engage/run.ts --rows 500000,5000000
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3'
import { fileSendKeys } from '@lookstream/destination'
import { HEADERS, TOPICS, headersFor, type CanonicalMessage } from '@lookstream/events'
import { createKafka, createProducer, ensureTopics } from '@lookstream/kafka'
import {
  HARNESS_S3_CREDENTIALS,
  buildProject,
  ensureBucket,
  readStartCommand,
  s3Client,
  spawnService,
  startS3,
} from '@lookstream/testing'
import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { startKafkaAndRedis, stopsFor } from '../e2e/identify-backlog.ts'
import { cpuSeconds, peakRssBytes } from '../ingress/proc-stats.ts'

const ENGAGE_DIR = join(import.meta.dirname, '../../services/recurly-engage')
const BUCKET = 'bench-recurly-engage'
const PARTITIONS = 6

const { values: args } = parseArgs({
  options: { rows: { type: 'string', default: '500000,5000000' }, compare: { type: 'string' } },
})
const sizes = args.rows.split(',').map((n) => Number(n.replace(/_/g, '')))
// --compare NAME=VALUE[,NAME=VALUE]: each size is run a second time with these service settings, side by side.
const variants: Record<string, string>[] = [{}]
if (args.compare !== undefined) {
  variants.push(
    Object.fromEntries(
      args.compare.split(',').map((pair) => {
        const at = pair.indexOf('=')
        if (at <= 0) throw new Error(`--compare takes NAME=VALUE pairs, got "${pair}"`)
        return [pair.slice(0, at), pair.slice(at + 1)]
      }),
    ),
  )
}

const now = () => performance.now()
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`)

function message(sendId: string, startedAt: string, index: number): CanonicalMessage {
  return {
    type: 'identify',
    messageId: `${sendId}-${index}`,
    userId: `user-${index}`,
    traits: {
      'Users Email': `user${index}@example.com`,
      'Users Plan': index % 3 === 0 ? 'annual' : 'monthly',
      'Users LTV': index % 997,
      'Users Signup': '2024-03-01',
      'Users Active': index % 2 === 0,
    },
    context: { lookstream: { sendId, row: index, action: 'recurly_engage' } },
    timestamp: startedAt,
    integrations: { All: false, 'Recurly Engage': { connection: 'default' } },
  }
}

async function runSize(rows: number, settings: Record<string, string>): Promise<Record<string, string | number>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-engage-'))
  const stops = stopsFor(dataDir)
  try {
    const { kafka, redis } = await startKafkaAndRedis(join(dataDir, 'kafka'), stops)
    const s3 = await startS3({ directory: join(dataDir, 's3') })
    stops.push(() => s3.stop())
    await ensureBucket(s3.endpoint, BUCKET)
    const client = createKafka({ brokers: kafka.brokers, clientId: 'bench', logger: pino({ level: 'silent' }) })
    await ensureTopics(
      client,
      ['lookstream.identify.v1', 'lookstream.track.v1', 'lookstream.group.v1', TOPICS.sends].map((topic) => ({
        topic,
        numPartitions: PARTITIONS,
      })),
    )
    const producer = await createProducer(client)
    stops.push(() => producer.close())

    const start = readStartCommand(ENGAGE_DIR)
    buildProject(ENGAGE_DIR)
    const service = await spawnService(
      start.entry,
      {
        ...start.env,
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'info',
        KAFKA_BROKERS: kafka.brokers,
        REDIS_URL: redis.url,
        DELIVERY_TOPIC_PARTITIONS: String(PARTITIONS),
        RECURLY_ENGAGE_S3_BUCKET: BUCKET,
        RECURLY_ENGAGE_S3_PREFIX: 'ingest/',
        RECURLY_ENGAGE_S3_ENDPOINT: s3.endpoint,
        RECURLY_ENGAGE_S3_ACCESS_KEY_ID: HARNESS_S3_CREDENTIALS.accessKeyId,
        RECURLY_ENGAGE_S3_SECRET_ACCESS_KEY: HARNESS_S3_CREDENTIALS.secretAccessKey,
        ...settings,
      },
      { readyTimeoutMs: 60_000, compiled: true, nodeArgs: start.nodeArgs },
    )
    stops.push(() => service.stop('SIGTERM', 20_000))

    const sendId = randomUUID()
    const startedAt = new Date().toISOString()
    const key = `ingest/traits_${startedAt.replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}.csv`
    log(`${rows} rows: producing (service pid ${service.pid})`)
    const cpuStart = cpuSeconds(service.pid)
    const first = now()
    for (let i = 0; i < rows; i += 5000) {
      const batch: Promise<unknown>[] = []
      for (let j = i; j < Math.min(rows, i + 5000); j++) {
        const m = message(sendId, startedAt, j)
        batch.push(
          producer.send({
            topic: TOPICS.identify,
            key: m.userId ?? null,
            value: JSON.stringify(m),
            headers: headersFor(m, { producer: 'ingress', sendId }),
          }),
        )
      }
      await Promise.all(batch)
    }
    const lastRow = now()
    await producer.send({
      topic: TOPICS.sends,
      key: sendId,
      value: JSON.stringify({
        type: 'send',
        phase: 'finished',
        sendId,
        at: new Date().toISOString(),
        producer: 'ingress',
        destination: 'recurly-engage',
        action: 'recurly_engage',
        connection: 'default',
        status: 'succeeded',
        counts: { received: rows, accepted: rows, rejected: 0, produced: rows },
        startedAt,
      }),
      headers: { [HEADERS.producer]: 'ingress', [HEADERS.sendId]: sendId, [HEADERS.schema]: 'send.v1' },
    })
    log(`${rows} rows: produced in ${((lastRow - first) / 1000).toFixed(1)} s; waiting for the file`)
    const s3c = s3Client(s3.endpoint)
    // Visible = the upload completed (the service records the send as published right after
    // CompleteMultipartUpload / PutObject returned). s3rver, unlike S3, writes an object's file in place, so a HEAD
    // can answer 200 while it is still writing it: polling HEAD would measure s3rver, not the file's publication.
    const state = new Redis(redis.url)
    stops.push(() => state.quit())
    // The peak while gathering (VmHWM once every row is staged) apart from the peak overall (composing included).
    let gatherPeak: number | undefined
    let gathered: number | undefined
    for (;;) {
      const [outcome, staged] = await state.hmget(fileSendKeys('recurly-engage', sendId).send, 'outcome', 'staged')
      if (gatherPeak === undefined && Number(staged ?? 0) >= rows) {
        gatherPeak = peakRssBytes(service.pid)
        gathered = now()
      }
      if (outcome === 'published') break
      if (now() - lastRow > 1_800_000) throw new Error('no file after 30 min')
      await sleep(50)
    }
    await s3c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))
    const visible = now()
    for (const line of service.logs()) {
      if (typeof line.msg === 'string' && line.msg !== 'request completed' && line.msg !== 'incoming request') {
        log(
          `service: ${String(line.msg)} ${JSON.stringify({ ...line, msg: undefined, pid: undefined, hostname: undefined })}`,
        )
      }
    }
    const cpu = cpuSeconds(service.pid) - cpuStart
    const peak = peakRssBytes(service.pid)
    // Read back: every row once (no value in this bench holds a line break).
    const body = (await s3c.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body as AsyncIterable<Buffer>
    let lines = 0
    let size = 0
    for await (const chunk of body) {
      size += chunk.length
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++
    }
    s3c.destroy()
    if (lines !== rows + 1) throw new Error(`the file has ${lines} lines, expected ${rows + 1}`)
    const result = {
      rows,
      settings: Object.entries(settings)
        .map(([name, value]) => `${name}=${value}`)
        .join(' '),
      'rows/s (first row → file visible)': Math.round(rows / ((visible - first) / 1000)),
      'producer rows/s': Math.round(rows / ((lastRow - first) / 1000)),
      'last row → file visible (s)': ((visible - lastRow) / 1000).toFixed(2),
      'service peak RSS (MiB)': (peak / 1048576).toFixed(1),
      'peak RSS gathering (MiB)': ((gatherPeak ?? peak) / 1048576).toFixed(1),
      'last row → every row staged (s)': (((gathered ?? visible) - lastRow) / 1000).toFixed(2),
      'service CPU (s)': cpu.toFixed(1),
      'rows per service CPU-second': Math.round(rows / cpu),
      'load average (1 min)': loadavg()[0]!.toFixed(1),
      'file (MiB)': (size / 1048576).toFixed(1),
    }
    log(JSON.stringify(result))
    return result
  } finally {
    await stops.stopAll()
  }
}

const results: Record<string, string | number>[] = []
for (const rows of sizes) for (const settings of variants) results.push(await runSize(rows, settings))
console.table(results)
process.exit(0)
