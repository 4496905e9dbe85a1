import { ErrorCode } from '../../protocol/error-codes.ts'
import { type BrokerConfig, type Handler } from '../context.ts'

interface DescribeConfigsResource {
  resourceType: number
  resourceName: string
  configurationKeys: string[] | null
}

const TOPIC = 2
const BROKER = 4
// ConfigSource values of DescribeConfigs v1+.
const DEFAULT_CONFIG = 5
const STATIC_BROKER_CONFIG = 4

function configsFor(config: BrokerConfig): [string, string][] {
  return [
    ['cleanup.policy', 'delete'],
    ['retention.ms', String(config.retentionMs)],
    ['retention.bytes', String(config.retentionBytes)],
    ['segment.bytes', String(config.segmentBytes)],
    ['max.message.bytes', String(config.maxMessageBytes)],
    ['message.timestamp.type', 'CreateTime'],
    ['min.insync.replicas', '1'],
    ['compression.type', 'producer'],
  ]
}

// Read-only view of the settings that apply; enough for admin tools that inspect a topic.
export const handleDescribeConfigs: Handler = (ctx, req) => ({
  throttleTimeMs: 0,
  results: (req.resources as DescribeConfigsResource[]).map((r) => {
    const base = { resourceType: r.resourceType, resourceName: r.resourceName, errorMessage: null }
    if (r.resourceType === TOPIC && !ctx.store.topics.has(r.resourceName)) {
      return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'unknown topic', configs: [] }
    }
    if (r.resourceType !== TOPIC && r.resourceType !== BROKER) {
      return { ...base, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'unsupported resource type', configs: [] }
    }
    const wanted = r.configurationKeys === null ? null : new Set(r.configurationKeys)
    const configs = configsFor(ctx.config)
      .filter(([name]) => wanted === null || wanted.has(name))
      .map(([name, value]) => ({
        name,
        value,
        readOnly: true,
        isDefault: true,
        configSource: r.resourceType === TOPIC ? DEFAULT_CONFIG : STATIC_BROKER_CONFIG,
        isSensitive: false,
        synonyms: [],
      }))
    return { ...base, errorCode: 0, configs }
  }),
})
