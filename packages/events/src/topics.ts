import { type DestinationId } from './destinations.ts'

/** Canonical topics. The `.v1` suffix is the compatibility line: only additive changes happen within it. */
export const TOPICS = {
  identify: 'lookstream.identify.v1',
  track: 'lookstream.track.v1',
  group: 'lookstream.group.v1',
  sends: 'lookstream.sends.v1',
} as const

export type CanonicalTopic = (typeof TOPICS)['identify' | 'track' | 'group']

export const MESSAGE_TOPICS: readonly CanonicalTopic[] = [TOPICS.identify, TOPICS.track, TOPICS.group]

/** Delayed-retry topic that the destination's own service consumes again. */
export function retryTopic(destination: DestinationId): string {
  return `lookstream.retry.${destination}`
}

/** Dead-letter topic: permanent failures and messages past the retry window, with the reason in headers. */
export function dlqTopic(destination: DestinationId): string {
  return `lookstream.dlq.${destination}`
}
