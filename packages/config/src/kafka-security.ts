import { ConfigError } from './config-error.ts'
import { type KafkaSaslMechanism, type KafkaSecurityProtocol } from './fragments.ts'
import { SettingFiles, type ReadFile } from './setting-files.ts'

/** The KafkaEnv keys that choose how to connect (the result of loadConfig with KafkaEnv). */
export interface KafkaSecuritySettings {
  KAFKA_SECURITY_PROTOCOL: KafkaSecurityProtocol
  KAFKA_SSL_CA_FILE?: string | undefined
  KAFKA_SSL_CERT_FILE?: string | undefined
  KAFKA_SSL_KEY_FILE?: string | undefined
  KAFKA_SSL_SERVERNAME?: string | undefined
  KAFKA_SASL_MECHANISM?: KafkaSaslMechanism | undefined
  KAFKA_SASL_USERNAME?: string | undefined
  KAFKA_SASL_USERNAME_FILE?: string | undefined
  KAFKA_SASL_PASSWORD?: string | undefined
  KAFKA_SASL_PASSWORD_FILE?: string | undefined
}

export interface TlsMaterial {
  /** PEM; absent: the system's CAs. */
  ca?: string
  cert?: string
  key?: string
  servername?: string
}

export interface SaslCredentials {
  mechanism: KafkaSaslMechanism
  username: string
  password: string
}

/** How to reach the brokers. Holds secrets: never log it, never put it in an error. */
export interface KafkaSecurity {
  protocol: KafkaSecurityProtocol
  tls: TlsMaterial | null
  sasl: SaslCredentials | null
}

const TLS_KEYS = ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE', 'KAFKA_SSL_SERVERNAME'] as const
const SASL_KEYS = [
  'KAFKA_SASL_MECHANISM',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_USERNAME_FILE',
  'KAFKA_SASL_PASSWORD',
  'KAFKA_SASL_PASSWORD_FILE',
] as const

/**
 * Reads the files the Kafka security settings name and checks that the settings fit together. Throws one
 * ConfigError naming every setting to fix; a setting that would be ignored (a CA file with PLAINTEXT) is
 * an error too, so a typo in the protocol cannot silently send credentials in clear text.
 */
export function resolveKafkaSecurity(settings: KafkaSecuritySettings, read?: ReadFile): KafkaSecurity {
  const files = new SettingFiles(read)
  const protocol = settings.KAFKA_SECURITY_PROTOCOL
  const useTls = protocol === 'SSL' || protocol === 'SASL_SSL'
  const useSasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL'

  const ignored = (keys: readonly (keyof KafkaSecuritySettings)[], needs: string) => {
    for (const key of keys) {
      if (settings[key] !== undefined) {
        files.problem(
          key,
          `to be unset while KAFKA_SECURITY_PROTOCOL is ${protocol} (set KAFKA_SECURITY_PROTOCOL to ${needs} to use it)`,
          'a value',
        )
      }
    }
  }

  let tls: TlsMaterial | null = null
  if (useTls) {
    tls = {}
    const ca = files.pem('KAFKA_SSL_CA_FILE', settings.KAFKA_SSL_CA_FILE, 'CERTIFICATE')
    if (ca !== undefined) tls.ca = ca
    const certPath = settings.KAFKA_SSL_CERT_FILE
    const keyPath = settings.KAFKA_SSL_KEY_FILE
    if ((certPath === undefined) !== (keyPath === undefined)) {
      const missing = certPath === undefined ? 'KAFKA_SSL_CERT_FILE' : 'KAFKA_SSL_KEY_FILE'
      files.problem(
        missing,
        'to be set: a client certificate needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE',
        'nothing (not set)',
      )
    } else {
      const cert = files.pem('KAFKA_SSL_CERT_FILE', certPath, 'CERTIFICATE')
      const key = files.pem('KAFKA_SSL_KEY_FILE', keyPath, 'PRIVATE KEY')
      if (cert !== undefined) tls.cert = cert
      if (key !== undefined) tls.key = key
    }
    if (settings.KAFKA_SSL_SERVERNAME !== undefined) tls.servername = settings.KAFKA_SSL_SERVERNAME
  } else {
    ignored(TLS_KEYS, protocol === 'SASL_PLAINTEXT' ? 'SASL_SSL' : 'SSL or SASL_SSL')
  }

  let sasl: SaslCredentials | null = null
  if (useSasl) {
    const why = `KAFKA_SECURITY_PROTOCOL is ${protocol}`
    const mechanism = settings.KAFKA_SASL_MECHANISM
    if (mechanism === undefined) {
      files.problem('KAFKA_SASL_MECHANISM', `PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (${why})`, 'nothing (not set)')
    }
    const username = files.value(
      'KAFKA_SASL_USERNAME',
      settings.KAFKA_SASL_USERNAME,
      settings.KAFKA_SASL_USERNAME_FILE,
      why,
    )
    const password = files.value(
      'KAFKA_SASL_PASSWORD',
      settings.KAFKA_SASL_PASSWORD,
      settings.KAFKA_SASL_PASSWORD_FILE,
      why,
    )
    if (mechanism !== undefined && username !== undefined && password !== undefined) {
      sasl = { mechanism, username, password }
    }
  } else {
    ignored(SASL_KEYS, protocol === 'SSL' ? 'SASL_SSL' : 'SASL_PLAINTEXT or SASL_SSL')
  }

  if (files.problems.length > 0) throw new ConfigError(files.problems)
  return { protocol, tls, sasl }
}

/** Where credentials come from, safe to log: the mechanism and user, never the password. */
export function describeKafkaSecurity(security: KafkaSecurity): string {
  const parts: string[] = [security.protocol]
  if (security.sasl !== null) parts.push(`${security.sasl.mechanism} user ${JSON.stringify(security.sasl.username)}`)
  if (security.tls?.cert !== undefined) parts.push('client certificate')
  return parts.join(', ')
}
