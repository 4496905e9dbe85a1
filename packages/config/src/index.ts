export { ConfigError, type ConfigProblem } from './config-error.ts'
export { describeSchema } from './describe-schema.ts'
export {
  brokerList,
  HttpEnv,
  KAFKA_SASL_MECHANISMS,
  KAFKA_SECURITY_PROTOCOLS,
  KafkaEnv,
  KafkaTopicPolicyEnv,
  LOG_LEVELS,
  LogEnv,
  REDIS_MODES,
  RedisEnv,
  type KafkaSaslMechanism,
  type RedisMode,
  type KafkaSecurityProtocol,
  type LogLevel,
} from './fragments.ts'
export { loadConfig, loadConfigOrExit, orExit, orExitAsync, type Env, type ExitIo } from './load-config.ts'
export { isSecretName } from './secret-name.ts'
export {
  describeKafkaSecurity,
  resolveKafkaSecurity,
  type KafkaSecurity,
  type KafkaSecuritySettings,
  type SaslCredentials,
  type TlsMaterial,
} from './kafka-security.ts'
export { SettingFiles, type ReadFile } from './setting-files.ts'
export {
  describeRedis,
  resolveRedisSettings,
  type RedisConnection,
  type RedisEnvSettings,
  type RedisNode,
} from './redis-settings.ts'
export { StartupError } from './startup-error.ts'
