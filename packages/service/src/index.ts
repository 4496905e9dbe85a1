export {
  createService,
  DEFAULT_HTTP_LIMITS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  type HttpLimits,
  type ListenAddress,
  type Service,
  type ServiceApp,
  type ServiceConfig,
  type ServiceOptions,
} from './create-service.ts'
export { createLogger, type LoggerOptions } from './logger.ts'
export { LookstreamError, type LookstreamErrorOptions } from './lookstream-error.ts'
export { createHttpMetrics, createRegistry } from './metrics.ts'
export { REDACTED, redactDeep, redactHeaders, redactUrl } from './redact.ts'
export { runReadiness, type CheckResult, type ReadinessCheck, type ReadinessReport } from './readiness.ts'
