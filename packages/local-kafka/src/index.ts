export { startLocalKafka, type LocalKafka, type StartLocalKafkaOptions } from './process.ts'
export { Broker, type BrokerOptions } from './broker/broker.ts'
