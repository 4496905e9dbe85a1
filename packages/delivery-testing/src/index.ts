export {
  HEADERS,
  identify,
  messageIdOf,
  newRunId,
  produceMessages,
  produceRaw,
  readTopic,
  serviceEnv,
  startDeliveryStack,
  type DeliveryStack,
  type DeliveryStackOptions,
} from './delivery-stack.ts'
