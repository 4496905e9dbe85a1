export { isAlive, trackedPids, trackPid } from './child-registry.ts'
export { detectContainerRuntime } from './container-runtime.ts'
export { freePort } from './free-port.ts'
export {
  resolveHarness,
  type Component,
  type Harness,
  type HarnessMode,
  type HarnessOptions,
  type Source,
} from './harness.ts'
export { IMAGES } from './images.ts'
// Generated per test run with openssl; local-kafka owns it because its own tests need it too.
export { createTestCertificates, type TestCertificates } from '@lookstream/local-kafka'
export {
  loadLocalKafka,
  startLocalKafkaTracked,
  type LocalKafka,
  type LocalKafkaOptions,
  type StartLocalKafka,
} from './local-kafka.ts'
export {
  ProcessStartError,
  startManagedProcess,
  type ManagedProcess,
  type ManagedProcessOptions,
  type ProcessExit,
} from './managed-process.ts'
export type {} from './provided-context.ts'
export {
  startRedis,
  startRedisCluster,
  startRedisSentinel,
  type RedisClusterProcess,
  type RedisSentinelOptions,
  type RedisSentinelProcess,
  type RedisOptions,
  type RedisProcess,
} from './redis-process.ts'
export { ensureBucket, readObjectText, s3Client, type S3Credentials } from './s3-client.ts'
export { HARNESS_S3_CREDENTIALS } from './s3-credentials.ts'
export { startS3, type S3Options, type S3Process } from './s3-process.ts'
export { spawnService, type SpawnedService, type SpawnServiceOptions } from './spawn-service.ts'
export { uniqueGroup, uniqueTopic } from './unique-names.ts'
export { waitFor, type WaitForOptions } from './wait-for.ts'
export { readTopicWithKcat, type TopicRecord } from './read-topic.ts'
export { buildProject, readStartCommand, type StartCommand } from './start-command.ts'
