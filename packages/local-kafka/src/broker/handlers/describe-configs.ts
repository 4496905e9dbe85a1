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
const DYNAMIC_TOPIC_CONFIG = 1

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

// The settings that apply: a topic's own overrides (CreateTopics configs, AlterConfigs) over the broker's.
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
    const overrides =
      r.resourceType === TOPIC ? ctx.store.topics.get(r.resourceName)!.configs : new Map<string, string>()
    const configs = configsFor(ctx.config)
      .filter(([name]) => wanted === null || wanted.has(name))
      .map(([name, value]) => {
        const override = overrides.get(name)
        return {
          name,
          value: override ?? value,
          readOnly: false,
          isDefault: override === undefined,
          configSource:
            override !== undefined
              ? DYNAMIC_TOPIC_CONFIG
              : r.resourceType === TOPIC
                ? DEFAULT_CONFIG
                : STATIC_BROKER_CONFIG,
          isSensitive: false,
          synonyms: [],
        }
      })
    return { ...base, errorCode: 0, configs }
  }),
})
