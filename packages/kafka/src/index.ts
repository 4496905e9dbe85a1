export {
  runConsumer,
  type ConsumedRecord,
  type ConsumerBatch,
  type ConsumerRunner,
  type PartitionState,
  type RunConsumerOptions,
  type TopicPartition,
} from './consumer-runner.ts'
export {
  createKafka,
  kafkaSecurityOptions,
  parseBrokers,
  type CreateKafkaOptions,
  type KafkaClient,
} from './create-kafka.ts'
export { ensureTopics, type TopicSpec } from './ensure-topics.ts'
export { fromKafkaHeaders, toKafkaHeaders, type RecordHeaders } from './headers.ts'
export { KafkaError, type KafkaErrorCode } from './kafka-error.ts'
export { kafkaLogLevelFor, pinoLogCreator } from './kafka-log-creator.ts'
export { PartitionOffsets } from './partition-offsets.ts'
export {
  createProducer,
  type LookstreamProducer,
  type ProduceRecord,
  type ProducerBatchInfo,
  type ProducerMetrics,
  type ProducerOptions,
  type ProducerStats,
  type RecordAck,
} from './producer.ts'
export { classifyKafkaStartError } from './start-errors.ts'
export {
  applyTopics,
  describeChange,
  describeTopics,
  lookstreamTopics,
  planTopics,
  PRODUCTION_TOPIC_POLICY,
  topicRisks,
  verifyTopics,
  type ActualTopic,
  type DesiredTopic,
  type TopicChange,
  type TopicPolicy,
} from './topic-management.ts'
export { runTopicsCommand } from './topics-command.ts'
export { compressionType, PRODUCER_COMPRESSIONS, type ProducerCompression } from './compression.ts'
