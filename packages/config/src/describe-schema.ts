// Human-readable "expected ..." text for a config key's schema, for ConfigError messages.
export type JsonSchema = Record<string, unknown>

export function literalsOf(schema: JsonSchema): unknown[] | undefined {
  if ('const' in schema) return [schema.const]
  if (Array.isArray(schema.enum)) return schema.enum as unknown[]
  if (Array.isArray(schema.anyOf)) {
    const members = schema.anyOf as JsonSchema[]
    if (members.length > 0 && members.every((m) => 'const' in m)) return members.map((m) => m.const)
  }
  return undefined
}

function bound(value: unknown): string | undefined {
  return typeof value === 'number' || typeof value === 'bigint' ? String(value) : undefined
}

function range(schema: JsonSchema): string | undefined {
  const min = bound(schema.minimum ?? schema.exclusiveMinimum)
  const max = bound(schema.maximum ?? schema.exclusiveMaximum)
  const lo = schema.exclusiveMinimum === undefined ? '>=' : '>'
  const hi = schema.exclusiveMaximum === undefined ? '<=' : '<'
  if (min !== undefined && max !== undefined && lo === '>=' && hi === '<=') return `between ${min} and ${max}`
  const parts: string[] = []
  if (min !== undefined) parts.push(`${lo} ${min}`)
  if (max !== undefined) parts.push(`${hi} ${max}`)
  return parts.length > 0 ? parts.join(' and ') : undefined
}

function length(schema: JsonSchema): string | undefined {
  const { minLength, maxLength } = schema
  if (typeof minLength === 'number' && typeof maxLength === 'number') {
    return `of ${minLength} to ${maxLength} characters`
  }
  if (typeof minLength === 'number') return `of at least ${minLength} character${minLength === 1 ? '' : 's'}`
  if (typeof maxLength === 'number') return `of at most ${maxLength} characters`
  return undefined
}

export function describeSchema(schema: JsonSchema): string {
  const literals = literalsOf(schema)
  let text: string
  if (literals) {
    text = `one of ${literals.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join(', ')}`
  } else if (Array.isArray(schema.anyOf)) {
    text = (schema.anyOf as JsonSchema[]).map(describeSchema).join(' or ')
  } else {
    const parts: (string | undefined)[] = []
    switch (schema.type) {
      case 'integer':
        parts.push('an integer', range(schema))
        break
      case 'number':
        parts.push('a number', range(schema))
        break
      case 'boolean':
        parts.push('a boolean (true, false, 1 or 0)')
        break
      case 'string':
        parts.push('a string', length(schema))
        // A description says what a pattern means better than the pattern itself.
        if (typeof schema.pattern === 'string' && typeof schema.description !== 'string') {
          parts.push(`matching /${schema.pattern}/`)
        }
        if (typeof schema.format === 'string') parts.push(`in ${schema.format} format`)
        break
      case 'object':
        parts.push('a JSON object')
        break
      case 'array':
        parts.push('a JSON array')
        break
      default:
        parts.push('a value matching the schema')
    }
    text = parts.filter((p) => p !== undefined).join(' ')
  }
  return typeof schema.description === 'string' ? `${text} (${schema.description})` : text
}
