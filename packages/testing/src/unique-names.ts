import { randomUUID } from 'node:crypto'

/** A topic name no other test uses, so tests never share state on a broker. */
export function uniqueTopic(prefix = 'test'): string {
  return `${prefix}.${randomUUID()}`
}

/** A consumer group id no other test uses. */
export function uniqueGroup(prefix = 'test'): string {
  return `${prefix}-${randomUUID()}`
}
