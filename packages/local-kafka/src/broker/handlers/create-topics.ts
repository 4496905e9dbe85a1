import { ErrorCode } from '../../protocol/error-codes.ts'
import { invalidTopicConfig, isValidTopicName, MAX_PARTITIONS } from '../../storage/topic-store.ts'
import { type Handler } from '../context.ts'

interface CreatableTopic {
  name: string
  numPartitions: number
  replicationFactor: number
  assignments: { partitionIndex: number; brokerIds: number[] }[]
  configs: { name: string; value: string | null }[]
}

function validate(t: CreatableTopic, partitions: number): { errorCode: number; errorMessage: string } | null {
  if (!isValidTopicName(t.name)) {
    return {
      errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION,
      errorMessage: 'topic names use [a-zA-Z0-9._-], 1-249 characters',
    }
  }
  if (partitions < 1 || partitions > MAX_PARTITIONS) {
    return { errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: `partitions must be 1..${MAX_PARTITIONS}` }
  }
  if (t.replicationFactor !== -1 && t.replicationFactor !== 1 && t.assignments.length === 0) {
    return {
      errorCode: ErrorCode.INVALID_REPLICATION_FACTOR,
      errorMessage: 'this broker is a single node: replication factor 1',
    }
  }
  const badConfig = invalidTopicConfig(t.configs.map((c) => [c.name, c.value]))
  if (badConfig !== null) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: badConfig }
  return null
}

export const handleCreateTopics: Handler = (ctx, req) => ({
  throttleTimeMs: 0,
  topics: (req.topics as CreatableTopic[]).map((t) => {
    const partitions =
      t.assignments.length > 0
        ? t.assignments.length
        : t.numPartitions === -1
          ? ctx.config.defaultPartitions
          : t.numPartitions
    const invalid = validate(t, partitions)
    if (invalid !== null) return { name: t.name, ...invalid }
    if (ctx.store.topics.has(t.name)) {
      return {
        name: t.name,
        errorCode: ErrorCode.TOPIC_ALREADY_EXISTS,
        errorMessage: `topic '${t.name}' already exists`,
      }
    }
    if (req.validateOnly === true) return { name: t.name, errorCode: 0, errorMessage: null }
    const errorCode = ctx.store.create(t.name, partitions, new Map(t.configs.map((c) => [c.name, c.value!])))
    return { name: t.name, errorCode, errorMessage: null }
  }),
})
