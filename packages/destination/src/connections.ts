import { ConfigError, describeSchema, type ConfigProblem } from '@lookstream/config'
import { Connection as ConnectionName } from '@lookstream/events'
import { readFileSync } from 'node:fs'
import { Type, type Static, type TObject, type TSchema } from 'typebox'
import { Value } from 'typebox/value'

// Named connections, the same way for every destination service: the `default` connection from the service's
// flat variables (e.g. BRAZE_API_KEY), more from `<PREFIX>_CONNECTIONS` (JSON) and from
// `<PREFIX>_CONNECTIONS_FILE` (the same JSON in a file, e.g. a mounted Kubernetes Secret). Values are never
// printed: a problem names the setting, the connection and the field.

/** The two settings that hold more connections, for a service's config schema. */
export function connectionsEnv<S extends TObject>(prefix: string, schema: S, example: string): Record<string, TSchema> {
  return {
    [`${prefix}_CONNECTIONS`]: Type.Optional(
      Type.Record(ConnectionName, schema, { description: `more connections as JSON: ${example}` }),
    ),
    [`${prefix}_CONNECTIONS_FILE`]: Type.Optional(
      Type.String({
        minLength: 1,
        description: `path of a file holding more connections in the ${prefix}_CONNECTIONS format (a mounted secret)`,
      }),
    ),
  }
}

const NAME_RULE = 'letters, digits, `_`, `.`, `-`; at most 64; starting with a letter or digit'

/**
 * The named connections of `<PREFIX>_CONNECTIONS` and `<PREFIX>_CONNECTIONS_FILE`, checked against `schema`;
 * throws a ConfigError naming every problem (a name given twice, a bad field, an unreadable file).
 */
export function readNamedConnections<S extends TObject>(
  prefix: string,
  schema: S,
  config: Readonly<Record<string, unknown>>,
): Map<string, Static<S>> {
  const result = new Map<string, Static<S>>()
  const problems: ConfigProblem[] = []
  const add = (setting: string, entries: Record<string, unknown>) => {
    for (const [name, value] of Object.entries(entries)) {
      if (!Value.Check(ConnectionName, name)) {
        problems.push({ key: setting, expected: `connection names of ${NAME_RULE}`, given: JSON.stringify(name) })
        continue
      }
      if (result.has(name) || name === 'default') {
        problems.push({
          key: setting,
          expected: `connection "${name}" defined once`,
          given: name === 'default' ? 'a second "default" (it comes from the flat variables)' : 'a second definition',
        })
        continue
      }
      if (!Value.Check(schema, value)) {
        const first = Value.Errors(schema, value)[0]
        const where = first?.instancePath ? ` at ${first.instancePath}` : ''
        problems.push({
          key: `${setting} (connection "${name}")`,
          expected: describeSchema(schema as never),
          given: `a value that does not match${where}${first ? `: ${first.message}` : ''} (not shown)`,
        })
        continue
      }
      result.set(name, value)
    }
  }
  const inline = config[`${prefix}_CONNECTIONS`]
  if (inline !== undefined) add(`${prefix}_CONNECTIONS`, inline as Record<string, unknown>)
  const fileSetting = `${prefix}_CONNECTIONS_FILE`
  const file = config[fileSetting]
  if (typeof file === 'string') {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? 'not valid JSON'
      problems.push({ key: fileSetting, expected: 'a readable JSON file', given: `${JSON.stringify(file)} (${why})` })
    }
    if (parsed !== undefined) {
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        add(fileSetting, parsed as Record<string, unknown>)
      } else {
        problems.push({ key: fileSetting, expected: 'a JSON object of connections', given: 'another JSON value' })
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return result
}
