// Peak RSS of `dlq list` against DLQs of growing size, the streaming command beside the previous one (which read
// the whole DLQ into memory before printing), in one run:
//   node --conditions=@lookstream/source bench/dlq/run.ts [--sizes 20000,100000,300000] [--value-bytes 1000]
//   [--previous 35fb2d1]
// One local-kafka (on disk, in a temp dir); lookstream.dlq.segment (2 partitions) is filled up to each size in turn
// with dead letters of --value-bytes; each command runs as its own process (stdout discarded) and its peak RSS and
// wall time come from /usr/bin/time. --previous is the commit whose src/cli/dlq.ts is the previous command; it is
// written beside the current one for the run and removed afterwards.
import { HEADERS } from '@lookstream/events'
import { createKafka, createProducer, ensureTopics } from '@lookstream/kafka'
import { startLocalKafka } from '@lookstream/local-kafka'
import { execFileSync, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '20000,100000,300000' },
    'value-bytes': { type: 'string', default: '1000' },
    previous: { type: 'string', default: '35fb2d1' },
  },
})
const SIZES = args.sizes.split(',').map(Number)
const VALUE_BYTES = Number(args['value-bytes'])
const ROOT = new URL('../../', import.meta.url).pathname
const CLI_DIR = join(ROOT, 'packages/destination/src/cli')
const CURRENT = join(CLI_DIR, 'dlq.ts')
const PREVIOUS = join(CLI_DIR, 'dlq-previous.bench.ts')
const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)

const dataDir = mkdtempSync(join(tmpdir(), 'bench-dlq-'))
const kafka = await startLocalKafka({ port: 0, dataDir, logLevel: 'warn', initialRebalanceDelayMs: 0 })
writeFileSync(
  PREVIOUS,
  execFileSync('git', ['show', `${args.previous}:packages/destination/src/cli/dlq.ts`], { cwd: ROOT }),
)
const rows: string[] = []
try {
  const client = createKafka({ brokers: kafka.brokers, clientId: 'bench-dlq', logger: pino({ level: 'silent' }) })
  await ensureTopics(client, [{ topic: 'lookstream.dlq.segment', numPartitions: 2 }])
  const producer = await createProducer(client)
  const padding = 'x'.repeat(Math.max(0, VALUE_BYTES - 80))
  let produced = 0
  for (const size of SIZES) {
    log(`filling the DLQ to ${size} records`)
    const sends: Promise<unknown>[] = []
    for (; produced < size; produced++) {
      const id = randomUUID()
      sends.push(
        producer.send({
          topic: 'lookstream.dlq.segment',
          key: id,
          value: JSON.stringify({ type: 'identify', messageId: id, pad: padding }),
          headers: {
            [HEADERS.error]: 'HTTP 400: bad',
            [HEADERS.errorClass]: 'permanent',
            'lookstream-error-code': 'LS_DEST_PERMANENT',
            [HEADERS.originalTopic]: 'lookstream.identify.v1',
            [HEADERS.lastAttemptAt]: new Date().toISOString(),
          },
        }),
      )
      if (sends.length >= 5000) await Promise.all(sends.splice(0))
    }
    await Promise.all(sends)
    for (const [name, entry] of [
      ['previous', PREVIOUS],
      ['streaming', CURRENT],
    ] as const) {
      const timeFile = join(dataDir, 'time.txt')
      const extra = name === 'previous' ? ['--idle-ms', '5000'] : []
      const result = spawnSync(
        '/usr/bin/time',
        [
          '-f',
          '%M %e',
          '-o',
          timeFile,
          process.execPath,
          '--conditions=@lookstream/source',
          entry,
          'list',
          '--destination',
          'segment',
          ...extra,
        ],
        {
          env: { ...process.env, KAFKA_BROKERS: kafka.brokers },
          stdio: ['ignore', 'ignore', 'pipe'],
          maxBuffer: 64 * 1024 * 1024,
        },
      )
      if (result.status !== 0) {
        const reason = /Error: (.*)/.exec(result.stderr.toString())?.[1] ?? `exit ${result.status}`
        log(`${name} at ${size} failed: ${reason}`)
        rows.push(
          `| ${name} | ${size.toLocaleString('en-US')} | ${((size * VALUE_BYTES) / 1e6).toFixed(0)} | failed: ${reason} | |`,
        )
        continue
      }
      const [maxKb, seconds] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number)
      const listed = /(\d+) (?:dead-lettered|match)/.exec(result.stderr.toString())
      log(`${name} at ${size}: peak RSS ${(maxKb! / 1024).toFixed(0)} MiB, ${seconds} s (${listed?.[0] ?? '?'})`)
      rows.push(
        `| ${name} | ${size.toLocaleString('en-US')} | ${((size * VALUE_BYTES) / 1e6).toFixed(0)} | ${(maxKb! / 1024).toFixed(0)} | ${seconds!.toFixed(1)} |`,
      )
    }
  }
  await producer.close()
} finally {
  rmSync(PREVIOUS, { force: true })
  await kafka.stop()
  rmSync(dataDir, { recursive: true, force: true })
}
console.log(`\n\`dlq list --destination segment\`, dead letters of ${VALUE_BYTES} bytes\n`)
console.log('| command | dead letters | MB of values | peak RSS (MiB) | wall (s) |')
console.log('| --- | ---: | ---: | ---: | ---: |')
for (const row of rows) console.log(row)
