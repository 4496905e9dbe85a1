/**
 * Kafka header names. Header values are UTF-8 strings. The routing header lets a consumer skip messages
 * for other destinations without parsing the value; the DLQ/retry headers describe why and where from.
 */
export const HEADERS = {
  destinations: 'lookstream-destinations',
  sendId: 'lookstream-send-id',
  schema: 'lookstream-schema',
  producer: 'lookstream-producer',
  error: 'lookstream-error',
  errorClass: 'lookstream-error-class',
  attempts: 'lookstream-attempts',
  originalTopic: 'lookstream-original-topic',
  originalPartition: 'lookstream-original-partition',
  originalOffset: 'lookstream-original-offset',
  firstAttemptAt: 'lookstream-first-attempt-at',
  lastAttemptAt: 'lookstream-last-attempt-at',
  retryAt: 'lookstream-retry-at',
} as const

export type HeaderName = (typeof HEADERS)[keyof typeof HEADERS]
