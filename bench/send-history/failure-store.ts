// The send history's failed rows in Redis for a 5,000,000-row send with 1 % failures (50,000 rows), written the
// way the ingress writes them (recordRowFailures per 500 rows, count-only once the send's list is full):
// Redis bytes for the send (MEMORY USAGE of its two keys) and bytes per kept entry, with the default limits.
//   node --conditions=@lookstream/source bench/send-history/failure-store.ts [--failures 50000]
import {
  DEFAULT_FAILURE_LIMITS,
  type CountedFailure,
  deriveHistoryKey,
  failureCountsKey,
  failuresKey,
  readFailureSummary,
  recordRowFailures,
  sendRecordKey,
  type RowFailure,
} from '@lookstream/send-history'
import { startRedis } from '@lookstream/testing'
import { Redis } from 'ioredis'
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({ options: { failures: { type: 'string', default: '50000' } } })
const FAILURES = Number(args.failures)
const key = deriveHistoryKey('bench-history-secret-0123456789')
const redisProcess = await startRedis()
const redis = new Redis(redisProcess.url)
try {
  const sendId = randomUUID()
  await redis.hset(sendRecordKey(sendId), { send_id: sendId })
  await redis.expire(sendRecordKey(sendId), 30 * 24 * 3600)
  const before = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1])
  const started = performance.now()
  let written = 0
  for (let start = 0; start < FAILURES; start += 500) {
    const batch: RowFailure[] = []
    const countOnly: CountedFailure[] = []
    for (let i = start; i < Math.min(FAILURES, start + 500); i++) {
      const stage = i % 2 === 0 ? ('rejected' as const) : ('dead-lettered' as const)
      const code = i % 2 === 0 ? 'no_identity' : 'LS_DEST_ITEM_TOO_LARGE'
      if (written >= DEFAULT_FAILURE_LIMITS.maxEntries) {
        countOnly.push({ stage, destination: 'segment', code })
        continue
      }
      written++
      const row = i * 100 + 17
      batch.push({
        destination: 'segment',
        row,
        messageId: randomUUID(),
        stage,
        code,
        reason:
          i % 2 === 0
            ? 'row has no user_id, segment_anonymous_id or email value'
            : 'item is 40123 bytes, over the 32768-byte limit per event',
        identity: { userId: `user-${row}`, email: `user${row}@example.com` },
        at: new Date(),
      })
    }
    await recordRowFailures(redis, sendId, batch, { key, ttlSeconds: 30 * 24 * 3600, countOnly })
  }
  const ms = performance.now() - started
  const after = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1])
  const listBytes = Number(await redis.memory('USAGE', failuresKey(sendId)))
  const countBytes = Number(await redis.memory('USAGE', failureCountsKey(sendId)))
  const summary = await readFailureSummary(redis, sendId)
  console.log(
    `| failures | kept | list bytes (MEMORY USAGE) | counts hash bytes | bytes per kept entry | used_memory delta | ms |`,
  )
  console.log(`| ---: | ---: | ---: | ---: | ---: | ---: | ---: |`)
  console.log(
    `| ${summary.total} | ${summary.stored} | ${listBytes} | ${countBytes} | ${(listBytes / summary.stored).toFixed(1)} | ${after - before} | ${Math.round(ms)} |`,
  )
  console.log(JSON.stringify({ summary: { ...summary }, listBytes, countBytes, usedMemoryDelta: after - before, ms }))
} finally {
  redis.disconnect()
  await redisProcess.stop()
}
