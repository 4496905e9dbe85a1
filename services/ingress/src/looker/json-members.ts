// Duplicate keys in JSON text. JSON.parse keeps the last of two members with the same key and drops the other
// without a word; for a Looker result that would change a row's value silently. A scanner that counts the members
// written in the text (one ':' outside strings each) and the parsed value's member count tell whether any was
// dropped: they differ exactly when some object named a key more than once.

/** Members of every object in a parsed JSON value, through arrays and nested objects. */
export function countMembers(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0
  let members = 0
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) members += countMembers(value[i])
    return members
  }
  // JSON.parse makes own, enumerable, data properties only (`__proto__` included), so for-in sees each once.
  for (const key in value as Record<string, unknown>)
    members += 1 + countMembers((value as Record<string, unknown>)[key])
  return members
}

/** Members written in JSON text: its ':' outside strings. */
export function countWrittenMembers(text: string): number {
  let members = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x3a) members++
  }
  return members
}
