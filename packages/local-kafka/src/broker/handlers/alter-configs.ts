import { ErrorCode } from '../../protocol/error-codes.ts'
import { invalidTopicConfig } from '../../storage/topic-store.ts'
import { type Handler } from '../context.ts'

interface AlterConfigsResource {
  resourceType: number
  resourceName: string
  configs: { name: string; value: string | null }[]
}

const TOPIC = 2

// Kafka's (non-incremental) AlterConfigs: a topic's overrides become exactly the given set.
export const handleAlterConfigs: Handler = (ctx, req) => ({
  throttleTimeMs: 0,
  responses: (req.resources as AlterConfigsResource[]).map((r) => {
    const base = { resourceType: r.resourceType, resourceName: r.resourceName }
    if (r.resourceType !== TOPIC) {
      return { ...base, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'only topic configs can be altered here' }
    }
    if (!ctx.store.topics.has(r.resourceName)) {
      return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'unknown topic' }
    }
    const invalid = invalidTopicConfig(r.configs.map((c) => [c.name, c.value]))
    if (invalid !== null) return { ...base, errorCode: ErrorCode.INVALID_CONFIG, errorMessage: invalid }
    if (req.validateOnly === true) return { ...base, errorCode: 0, errorMessage: null }
    const errorCode = ctx.store.setConfigs(r.resourceName, new Map(r.configs.map((c) => [c.name, c.value!])))
    return { ...base, errorCode, errorMessage: null }
  }),
})
