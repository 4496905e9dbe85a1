// Dedupe store, previous layout (a key per id) and compact layout (time buckets of listpack hashes), side by side:
//   node --conditions=@lookstream/source bench/dedupe/run.ts [--ids 10000000] [--batch 500] [--lookups 100000]
//   [--layouts legacy,compact] [--load 48]
// Each layout gets a fresh redis-server of its own. --ids UUIDv5 messageIds (the ingress's messageIdHasher) are
// marked delivered in sequential batches, spread evenly over the last 7-day window (deliveredAt), so the compact
// layout has all its buckets filled; then wasDelivered is timed on --lookups ids that were marked (hits) and as many
// that were not (misses). Memory per id: INFO memory used_memory after minus before, over --ids; and the sum of
// MEMORY USAGE over the layout's keys (every key for the compact layout, a 20,000-key RANDOMKEY sample scaled to
// DBSIZE for the previous one). Redis CPU per id: the redis-server's CPU time (INFO cpu) in the phase over its ids.
import { DEFAULT_DEDUPE_TTL_SECONDS, Dedupe } from '@lookstream/destination'
import { messageIdHasher, type MessageIdHasher } from '@lookstream/events'
import { startRedis } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { parseArgs } from 'node:util'
import { LegacyDedupe } from './legacy-dedupe.ts'

const { values: args } = parseArgs({
  options: {
    ids: { type: 'string', default: '10000000' },
    batch: { type: 'string', default: '500' },
    lookups: { type: 'string', default: '100000' },
    layouts: { type: 'string', default: 'legacy,compact' },
    load: { type: 'string', default: '48' },
  },
})
const IDS = Number(args.ids)
const BATCH = Number(args.batch)
const LOOKUPS = Number(args.lookups)
const WINDOW_MS = DEFAULT_DEDUPE_TTL_SECONDS * 1000
const DESTINATION = 'segment'

const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`)

interface Store {
  wasDelivered(ids: readonly string[]): Promise<boolean[]>
  markDelivered(ids: readonly string[], deliveredAt?: number): Promise<void>
}

interface Result {
  layout: string
  usedBytesPerId: number
  memoryUsagePerId: number
  rssBytesPerId: number
  markIdsPerSecond: number
  markRedisUsPerId: number
  hitIdsPerSecond: number
  missIdsPerSecond: number
  lookupRedisUsPerId: number
  keys: number
  notListpack: number
}

async function info(redis: Redis, section: string, field: string): Promise<number> {
  const match = new RegExp(`^${field}:(\\d+(?:\\.\\d+)?)`, 'm').exec(await redis.info(section))
  if (match === null) throw new Error(`INFO ${section} has no ${field}`)
  return Number(match[1])
}

/** CPU time (user + system) the redis-server process has used, in µs: unlike command durations, it does not
 * count the time the process waited for a core on a busy machine. */
async function redisCpuUs(redis: Redis): Promise<number> {
  return ((await info(redis, 'cpu', 'used_cpu_user')) + (await info(redis, 'cpu', 'used_cpu_sys'))) * 1e6
}

function batchIds(hasher: MessageIdHasher, from: number, count: number): string[] {
  const ids = new Array<string>(count)
  for (let i = 0; i < count; i++) ids[i] = hasher(`user-${from + i}`, { row: from + i }, 0)
  return ids
}

async function memoryUsageTotal(
  redis: Redis,
  compact: boolean,
): Promise<{ total: number; keys: number; notListpack: number }> {
  const keys = await redis.dbsize()
  if (compact) {
    let total = 0
    let notListpack = 0
    for await (const batch of redis.scanStream({ match: 'lookstream:dedupe:*', count: 5000 })) {
      const names = batch as string[]
      if (names.length === 0) continue
      const pipeline = redis.pipeline()
      for (const name of names) pipeline.memory('USAGE', name, 'SAMPLES', '0').object('ENCODING', name)
      const replies = (await pipeline.exec()) ?? []
      for (let i = 0; i < replies.length; i += 2) {
        total += Number(replies[i]![1])
        const encoding = replies[i + 1]![1]
        const name = names[i / 2]!
        if (encoding !== 'listpack' && !name.endsWith('}')) notListpack++
      }
    }
    return { total, keys, notListpack }
  }
  const sample = 20_000
  const pipeline = redis.pipeline()
  for (let i = 0; i < sample; i++) pipeline.randomkey()
  const names = ((await pipeline.exec()) ?? []).map((reply) => String(reply[1]))
  const usage = redis.pipeline()
  for (const name of names) usage.memory('USAGE', name, 'SAMPLES', '0')
  const sizes = ((await usage.exec()) ?? []).map((reply) => Number(reply[1]))
  return { total: (sizes.reduce((a, b) => a + b, 0) / sizes.length) * keys, keys, notListpack: 0 }
}

async function run(layout: string): Promise<Result> {
  const server = await startRedis()
  const redis = new Redis(server.url)
  try {
    const now = Date.now()
    const store: Store =
      layout === 'compact'
        ? new Dedupe(redis, DESTINATION, DEFAULT_DEDUPE_TTL_SECONDS, { load: Number(args.load) })
        : new LegacyDedupe(redis, DESTINATION, DEFAULT_DEDUPE_TTL_SECONDS)
    const hasher = messageIdHasher({ destination: DESTINATION, connection: 'default', sendKey: 'plan-7', ranAt: 'r' })
    const stranger = messageIdHasher({ destination: DESTINATION, connection: 'default', sendKey: 'plan-8', ranAt: 'r' })
    // Loads the scripts and writes the layout's settings before the baseline.
    await store.wasDelivered(['warm-up'])
    const usedBefore = await info(redis, 'memory', 'used_memory')
    const rssBefore = await info(redis, 'memory', 'used_memory_rss')
    const markCpuBefore = await redisCpuUs(redis)

    log(`${layout}: marking ${IDS} ids in batches of ${BATCH}`)
    let markMs = 0
    for (let from = 0; from < IDS; from += BATCH) {
      const ids = batchIds(hasher, from, Math.min(BATCH, IDS - from))
      const deliveredAt = now - WINDOW_MS + Math.floor(((from + 1) / IDS) * (WINDOW_MS - 60_000))
      const started = performance.now()
      await store.markDelivered(ids, layout === 'compact' ? deliveredAt : undefined)
      markMs += performance.now() - started
      if (from % 1_000_000 === 0 && from > 0) log(`${layout}: ${from} marked`)
    }
    const markRedisUs = (await redisCpuUs(redis)) - markCpuBefore
    const usedAfter = await info(redis, 'memory', 'used_memory')
    const rssAfter = await info(redis, 'memory', 'used_memory_rss')
    const usage = await memoryUsageTotal(redis, layout === 'compact')

    log(`${layout}: looking up ${LOOKUPS} marked and ${LOOKUPS} unknown ids`)
    const lookupCpuBefore = await redisCpuUs(redis)
    let hitMs = 0
    let missMs = 0
    for (let done = 0; done < LOOKUPS; done += BATCH) {
      const count = Math.min(BATCH, LOOKUPS - done)
      const hits = batchIds(hasher, Math.floor(Math.random() * (IDS - count)), count)
      const misses = batchIds(stranger, done, count)
      let started = performance.now()
      const hitAnswer = await store.wasDelivered(hits)
      hitMs += performance.now() - started
      started = performance.now()
      const missAnswer = await store.wasDelivered(misses)
      missMs += performance.now() - started
      if (!hitAnswer.every(Boolean)) throw new Error(`${layout}: a marked id was not found`)
      if (missAnswer.some(Boolean)) throw new Error(`${layout}: an unknown id was found`)
    }
    const lookupRedisUs = (await redisCpuUs(redis)) - lookupCpuBefore
    return {
      layout,
      usedBytesPerId: (usedAfter - usedBefore) / IDS,
      memoryUsagePerId: usage.total / IDS,
      rssBytesPerId: (rssAfter - rssBefore) / IDS,
      markIdsPerSecond: IDS / (markMs / 1000),
      markRedisUsPerId: markRedisUs / IDS,
      hitIdsPerSecond: LOOKUPS / (hitMs / 1000),
      missIdsPerSecond: LOOKUPS / (missMs / 1000),
      lookupRedisUsPerId: lookupRedisUs / (2 * LOOKUPS),
      keys: usage.keys,
      notListpack: usage.notListpack,
    }
  } finally {
    redis.disconnect()
    await server.stop()
  }
}

const results: Result[] = []
for (const layout of args.layouts.split(',')) {
  if (layout !== 'legacy' && layout !== 'compact') throw new Error(`unknown layout ${layout} (legacy, compact)`)
  results.push(await run(layout))
}

const fmt = (value: number, digits = 0) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
console.log(
  `\n${IDS.toLocaleString('en-US')} ids, batches of ${BATCH}, 7-day window, wasDelivered on ${LOOKUPS.toLocaleString('en-US')} hits + as many misses\n`,
)
console.log(
  '| layout | used_memory B/id | MEMORY USAGE B/id | RSS B/id | keys | non-listpack hashes | markDelivered ids/s | Redis CPU µs/id (mark) | wasDelivered ids/s (hits) | wasDelivered ids/s (misses) | Redis CPU µs/id (lookup) |',
)
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const r of results) {
  console.log(
    `| ${r.layout} | ${fmt(r.usedBytesPerId, 1)} | ${fmt(r.memoryUsagePerId, 1)} | ${fmt(r.rssBytesPerId, 1)} | ${fmt(r.keys)} | ${r.layout === 'compact' ? fmt(r.notListpack) : '-'} | ${fmt(r.markIdsPerSecond)} | ${fmt(r.markRedisUsPerId, 2)} | ${fmt(r.hitIdsPerSecond)} | ${fmt(r.missIdsPerSecond)} | ${fmt(r.lookupRedisUsPerId, 2)} |`,
  )
}
