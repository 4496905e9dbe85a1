import { type Message } from '../../protocol/codec.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { type PartitionLog } from '../../storage/partition-log.ts'
import { type BrokerContext, type ConnectionContext, type Handler } from '../context.ts'

interface FetchPartitionReq {
  partition: number
  fetchOffset: number
  partitionMaxBytes: number
}

interface FetchTopicReq {
  topic: string
  partitions: FetchPartitionReq[]
}

interface Target {
  topic: string
  req: FetchPartitionReq
  log: PartitionLog | undefined
}

function targetsOf(ctx: BrokerContext, req: Message): Target[] {
  const out: Target[] = []
  for (const t of req.topics as FetchTopicReq[]) {
    for (const p of t.partitions) out.push({ topic: t.topic, req: p, log: ctx.store.partition(t.topic, p.partition) })
  }
  return out
}

// Builds the response from what the logs hold now: whole stored batches, the first one even if it alone
// exceeds the byte limits (KIP-74), so a consumer never stalls on a large batch.
function buildResponse(all: Target[], maxBytes: number, rotation: number): Message {
  const start = all.length === 0 ? 0 : rotation % all.length
  const targets = start === 0 ? all : [...all.slice(start), ...all.slice(0, start)]
  let total = 0
  const byTopic = new Map<string, object[]>()
  for (const { topic, req, log } of targets) {
    let partitions = byTopic.get(topic)
    if (partitions === undefined) byTopic.set(topic, (partitions = []))
    if (log === undefined) {
      partitions.push({
        partitionIndex: req.partition,
        errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        highWatermark: -1,
        lastStableOffset: -1,
        logStartOffset: -1,
        abortedTransactions: null,
        records: [],
      })
      continue
    }
    const budget = Math.max(0, Math.min(req.partitionMaxBytes, maxBytes - total))
    const r = log.read(req.fetchOffset, budget, total === 0)
    total += r.bytes
    partitions.push({
      partitionIndex: req.partition,
      errorCode: r.errorCode,
      highWatermark: log.highWatermark,
      // No transactions, so the last stable offset is the high watermark.
      lastStableOffset: log.highWatermark,
      logStartOffset: log.logStartOffset,
      abortedTransactions: null,
      preferredReadReplica: -1,
      records: r.records,
    })
  }
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    responses: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
  }
}

// Whether the fetch must be answered now rather than parked.
function readyNow(targets: Target[], minBytes: number): { ready: boolean; bytes: number } {
  let bytes = 0
  for (const { req, log } of targets) {
    if (log === undefined) return { ready: true, bytes }
    if (req.fetchOffset < log.logStartOffset || req.fetchOffset > log.highWatermark) return { ready: true, bytes }
    bytes += log.available(req.fetchOffset, req.partitionMaxBytes)
    if (bytes >= minBytes) return { ready: true, bytes }
  }
  return { ready: false, bytes }
}

export const handleFetch: Handler = (ctx, req, _version, conn: ConnectionContext) => {
  const targets = targetsOf(ctx, req)
  const maxBytes = req.maxBytes as number
  const minBytes = Math.max(1, req.minBytes as number)
  const maxWaitMs = Math.max(0, Math.min(req.maxWaitMs as number, 300_000))
  const now = readyNow(targets, minBytes)
  const rotation = conn.fetchRotation++
  if (now.ready || maxWaitMs === 0 || targets.length === 0) return buildResponse(targets, maxBytes, rotation)

  // Long-poll: park until enough new bytes arrive on watched partitions or the wait expires.
  return new Promise<Message | null>((resolve) => {
    let seen = now.bytes
    const logs = new Set<PartitionLog>()
    const cleanup = (): void => {
      clearTimeout(timer)
      for (const l of logs) l.watchers.delete(onData)
      conn.onClose.delete(onClose)
    }
    const finish = (): void => {
      cleanup()
      // A topic may have been deleted or recreated while parked: resolve logs again.
      resolve(buildResponse(targetsOf(ctx, req), maxBytes, rotation))
    }
    const onData = (bytes: number): void => {
      seen += bytes
      if (seen >= minBytes || bytes === 0) finish()
    }
    const onClose = (): void => {
      cleanup()
      resolve(null)
    }
    for (const t of targets) if (t.log !== undefined) logs.add(t.log)
    for (const l of logs) l.watchers.add(onData)
    conn.onClose.add(onClose)
    const timer = setTimeout(finish, maxWaitMs)
  })
}
