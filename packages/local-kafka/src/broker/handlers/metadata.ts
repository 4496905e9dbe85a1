import { ErrorCode } from '../../protocol/error-codes.ts'
import { isValidTopicName, type Topic } from '../../storage/topic-store.ts'
import { type Handler } from '../context.ts'

function describeTopic(topic: Topic): object {
  return {
    errorCode: 0,
    name: topic.name,
    isInternal: false,
    partitions: topic.partitions.map((p) => ({
      errorCode: 0,
      partitionIndex: p.partition,
      leaderId: 0,
      leaderEpoch: 0,
      replicaNodes: [0],
      isrNodes: [0],
      offlineReplicas: [],
    })),
  }
}

export const handleMetadata: Handler = (ctx, req, version) => {
  const requested = req.topics as { name: string }[] | null
  // v0 spells "all topics" as an empty list, v1+ as null.
  const all = requested === null || (version === 0 && requested.length === 0)
  const topics: object[] = []
  if (all) {
    for (const t of ctx.store.topics.values()) topics.push(describeTopic(t))
  } else {
    for (const { name } of requested) {
      let topic = ctx.store.topics.get(name)
      if (topic === undefined && !isValidTopicName(name)) {
        topics.push({ errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, name, partitions: [] })
        continue
      }
      if (topic === undefined && ctx.config.autoCreateTopics && req.allowAutoTopicCreation === true) {
        ctx.store.create(name, ctx.config.defaultPartitions)
        topic = ctx.store.topics.get(name)
      }
      topics.push(
        topic === undefined
          ? { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, partitions: [] }
          : describeTopic(topic),
      )
    }
  }
  return {
    throttleTimeMs: 0,
    brokers: [{ nodeId: 0, host: ctx.config.host, port: ctx.config.port, rack: null }],
    clusterId: ctx.config.clusterId,
    controllerId: 0,
    topics,
  }
}
