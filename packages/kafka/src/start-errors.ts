import { describeKafkaSecurity, StartupError, type KafkaSecurity } from '@lookstream/config'

const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
])

function chain(err: unknown): Error[] {
  const out: Error[] = []
  let current: unknown = err
  for (let depth = 0; depth < 6 && current instanceof Error && !out.includes(current); depth += 1) {
    out.push(current)
    const e = current as { originalError?: unknown; cause?: unknown }
    current = e.originalError ?? e.cause
  }
  return out
}

/**
 * Turns a failure to reach Kafka at start into a StartupError naming the setting to fix, when retrying cannot
 * help: refused credentials, an untrusted or mismatched certificate, TLS spoken to a plaintext listener (or the
 * reverse). Returns null for anything else (a broker that is down is an outage, not a configuration error).
 */
export function classifyKafkaStartError(err: unknown, security: KafkaSecurity | undefined): StartupError | null {
  const protocol = security?.protocol ?? 'PLAINTEXT'
  const how = security === undefined ? 'PLAINTEXT' : describeKafkaSecurity(security)
  for (const e of chain(err)) {
    const code = (e as { code?: unknown }).code
    const type = (e as { type?: unknown }).type
    if (e.name === 'KafkaJSSASLAuthenticationError' || type === 'SASL_AUTHENTICATION_FAILED') {
      if (/mechanism is not supported/.test(e.message)) {
        return new StartupError(
          'LS_KAFKA_AUTH_FAILED',
          `Kafka does not offer this SASL mechanism (${how}): set KAFKA_SASL_MECHANISM to one the brokers enable`,
        )
      }
      return new StartupError(
        'LS_KAFKA_AUTH_FAILED',
        `Kafka refused the SASL credentials (${how}): check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) and KAFKA_SASL_MECHANISM`,
      )
    }
    if (type === 'UNSUPPORTED_SASL_MECHANISM' || type === 'ILLEGAL_SASL_STATE') {
      return new StartupError(
        'LS_KAFKA_AUTH_FAILED',
        `Kafka did not accept SASL here (${how}): check KAFKA_SECURITY_PROTOCOL and KAFKA_SASL_MECHANISM against the listener`,
      )
    }
    if (typeof code === 'string' && TLS_TRUST_CODES.has(code)) {
      return new StartupError(
        'LS_KAFKA_TLS_FAILED',
        `the Kafka broker certificate is not trusted (${code}): set KAFKA_SSL_CA_FILE to the CA that signed it`,
      )
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new StartupError(
        'LS_KAFKA_TLS_FAILED',
        `the Kafka broker certificate does not name the host dialled (${code}): set KAFKA_SSL_SERVERNAME or use the name in KAFKA_BROKERS`,
      )
    }
    if (
      code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
      code === 'EPROTO' ||
      /before secure TLS connection/.test(e.message)
    ) {
      return new StartupError(
        'LS_KAFKA_TLS_FAILED',
        `the Kafka listener does not speak TLS (KAFKA_SECURITY_PROTOCOL is ${protocol}): use SASL_PLAINTEXT or PLAINTEXT, or the brokers' TLS port`,
      )
    }
  }
  return null
}
