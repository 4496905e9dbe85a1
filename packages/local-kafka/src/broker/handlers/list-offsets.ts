import { ErrorCode } from '../../protocol/error-codes.ts'
import { type Handler } from '../context.ts'

interface ListOffsetsTopic {
  name: string
  partitions: { partitionIndex: number; timestamp: number }[]
}

const LATEST = -1
const EARLIEST = -2

export const handleListOffsets: Handler = (ctx, req) => ({
  throttleTimeMs: 0,
  topics: (req.topics as ListOffsetsTopic[]).map((t) => ({
    name: t.name,
    partitions: t.partitions.map(({ partitionIndex, timestamp }) => {
      const log = ctx.store.partition(t.name, partitionIndex)
      if (log === undefined) {
        return { partitionIndex, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, oldStyleOffsets: [] }
      }
      let offset: number
      let ts = -1
      if (timestamp === LATEST) offset = log.highWatermark
      else if (timestamp === EARLIEST) offset = log.logStartOffset
      else {
        const hit = log.offsetForTimestamp(timestamp)
        offset = hit?.offset ?? -1
        ts = hit?.timestamp ?? -1
      }
      return { partitionIndex, errorCode: 0, oldStyleOffsets: [offset], timestamp: ts, offset, leaderEpoch: 0 }
    }),
  })),
})
