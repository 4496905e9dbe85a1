/**
 * Wraps a key part in a Redis Cluster hash tag: keys that share a tag hash to one slot, so a script or pipeline
 * that touches several of them runs on one node. `{` and `}` inside the part would end the tag early, so they are
 * refused rather than changed.
 */
export function hashTag(part: string): string {
  if (part.length === 0 || /[{}]/.test(part)) throw new RangeError('a hash tag part must be non-empty, without { or }')
  return `{${part}}`
}
