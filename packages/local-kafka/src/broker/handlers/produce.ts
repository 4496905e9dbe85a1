import { ErrorCode } from '../../protocol/error-codes.ts'
import { CorruptBatchError, parseProducedBatches } from '../../protocol/record-batch.ts'
import { type PartitionLog } from '../../storage/partition-log.ts'
import { type BrokerContext, type Handler } from '../context.ts'

interface ProducePartition {
  index: number
  records: Buffer | null
}

interface ProduceTopic {
  name: string
  partitionData: ProducePartition[]
}

function appendPartition(
  ctx: BrokerContext,
  log: PartitionLog | undefined,
  records: Buffer | null,
): { errorCode: number; baseOffset: number; bytes: number } {
  if (log === undefined) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, baseOffset: -1, bytes: 0 }
  if (records === null || records.length === 0)
    return { errorCode: ErrorCode.CORRUPT_MESSAGE, baseOffset: -1, bytes: 0 }
  let batches
  try {
    batches = parseProducedBatches(records)
  } catch (err) {
    if (!(err instanceof CorruptBatchError)) throw err
    ctx.log('warn', 'rejected corrupt batch', { topic: log.topic, partition: log.partition, reason: err.message })
    return { errorCode: ErrorCode.CORRUPT_MESSAGE, baseOffset: -1, bytes: 0 }
  }
  let baseOffset = -1
  let bytes = 0
  for (const b of batches) {
    if (b.buf.length > ctx.config.maxMessageBytes) return { errorCode: ErrorCode.MESSAGE_TOO_LARGE, baseOffset, bytes }
    if (b.transactional) return { errorCode: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, baseOffset, bytes }
    const before = log.nextOffset
    const res = log.append(b)
    if (res.errorCode !== 0) return { errorCode: res.errorCode, baseOffset: -1, bytes }
    if (baseOffset < 0) baseOffset = res.baseOffset
    if (log.nextOffset !== before) bytes += b.buf.length
  }
  return { errorCode: 0, baseOffset, bytes }
}

export const handleProduce: Handler = (ctx, req) => {
  const acks = req.acks as number
  const topics = req.topicData as ProduceTopic[]
  const validAcks = acks === 0 || acks === 1 || acks === -1
  const touched: { log: PartitionLog; bytes: number }[] = []
  const responses = topics.map((t) => ({
    name: t.name,
    partitionResponses: t.partitionData.map((p) => {
      const log = ctx.store.partition(t.name, p.index)
      if (req.transactionalId !== null) {
        return { index: p.index, errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, baseOffset: -1 }
      }
      if (!validAcks) return { index: p.index, errorCode: ErrorCode.INVALID_REQUIRED_ACKS, baseOffset: -1 }
      const r = appendPartition(ctx, log, p.records)
      if (log !== undefined && r.bytes > 0) touched.push({ log, bytes: r.bytes })
      return {
        index: p.index,
        errorCode: r.errorCode,
        baseOffset: r.baseOffset,
        logAppendTimeMs: -1,
        logStartOffset: log?.logStartOffset ?? -1,
      }
    }),
  }))
  // Batches are with the OS now (write() returned); with --fsync they also reach the disk before the ack.
  for (const { log } of touched) log.sync()
  for (const { log, bytes } of touched) log.notify(bytes)
  if (acks === 0) return null
  return { responses, throttleTimeMs: 0 }
}
