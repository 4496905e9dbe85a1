export { startLocalKafka, type LocalKafka, type StartLocalKafkaOptions } from './process.ts'
export { Broker, type BrokerOptions } from './broker/broker.ts'
// Raw protocol pieces for tests and benchmarks that need exact control of the wire.
export { encodeRequest, decodeResponseBody } from './protocol/frames.ts'
export { API_BY_KEY } from './protocol/messages/index.ts'
export { buildBatch, countRecords, type TestRecord } from './protocol/record-batch-builder.ts'
export { createTestCertificates, type TestCertificates } from './test-certificates.ts'
export { type SaslMechanism } from './broker/sasl/mechanisms.ts'
