export type KafkaErrorCode = 'LS_KAFKA_PRODUCER_CLOSED' | 'LS_KAFKA_RECORD_TOO_LARGE' | 'LS_KAFKA_CONSUMER_STOPPED'

export class KafkaError extends Error {
  readonly code: KafkaErrorCode

  constructor(code: KafkaErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'KafkaError'
    this.code = code
  }
}
