import { type Static, type TObject } from 'typebox'
import { Value } from 'typebox/value'
import { ConfigError, type ConfigProblem } from './config-error.ts'
import { describeSchema, type JsonSchema } from './describe-schema.ts'
import { isSecretName } from './secret-name.ts'
import { StartupError } from './startup-error.ts'

export type Env = Readonly<Record<string, string | undefined>>

const INTEGER = /^[+-]?\d+$/
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i
const BOOLEANS: Readonly<Record<string, boolean>> = { true: true, false: false, '1': true, '0': false }
const MAX_SHOWN = 80

// Strict string conversion. TypeBox's Value.Convert is too lenient for configuration: it turns
// "2.5" into the integer 2 and "" into 0. A string that does not convert is returned unchanged so
// that the check reports it against the expected type.
function convert(raw: string, schema: JsonSchema): unknown {
  const text = raw.trim()
  switch (schema.type) {
    case 'integer':
      return INTEGER.test(text) ? Number(text) : raw
    case 'number':
      return NUMBER.test(text) ? Number(text) : raw
    case 'boolean':
      return BOOLEANS[text.toLowerCase()] ?? raw
    case 'object':
    case 'array':
      try {
        return JSON.parse(raw) as unknown
      } catch {
        return raw
      }
    default:
      break
  }
  if (Array.isArray(schema.anyOf)) {
    for (const member of schema.anyOf as JsonSchema[]) {
      const value = convert(raw, member)
      if (Value.Check(member, value)) return value
    }
  }
  return raw
}

function isJsonValued(schema: JsonSchema): boolean {
  return schema.type === 'object' || schema.type === 'array'
}

// Never prints a secret's value, nor a JSON value (it may hold credentials under any key name).
function shown(key: string, raw: string, schema: JsonSchema): string {
  if (isSecretName(key)) return `a value of ${raw.length} characters (not shown: the name suggests a secret)`
  if (isJsonValued(schema)) return `a value of ${raw.length} characters (not shown: JSON)`
  const quoted = JSON.stringify(raw)
  return quoted.length > MAX_SHOWN ? `${quoted.slice(0, MAX_SHOWN)}…" (${raw.length} characters)` : quoted
}

function expected(schema: JsonSchema, value: unknown, raw: string): string {
  const text = describeSchema(schema)
  if (!isJsonValued(schema)) return text
  if (typeof value === 'string' && value === raw) return `${text} (the value is not valid JSON)`
  const details = Value.Errors(schema, value)
    .slice(0, 3)
    .map((e) => `${e.instancePath || '/'} ${e.message}`)
  return details.length > 0 ? `${text} (${details.join('; ')})` : text
}

/**
 * Reads a flat TypeBox object of SCREAMING_CASE keys from the environment: applies defaults,
 * converts strings to the declared numbers, integers, booleans and JSON values, ignores keys the
 * schema does not name, and throws one ConfigError listing every missing or invalid key.
 * An empty string counts as not set, so `PORT=` falls back to the default.
 */
export function loadConfig<T extends TObject>(schema: T, env: Env = process.env): Static<T> {
  const properties = schema.properties as Record<string, JsonSchema>
  const required = new Set(schema.required as string[] | undefined)
  const config: Record<string, unknown> = {}
  const problems: ConfigProblem[] = []

  for (const [key, property] of Object.entries(properties)) {
    const raw = env[key]
    if (raw === undefined || raw === '') {
      if ('default' in property) config[key] = Value.Clone(property.default)
      else if (required.has(key)) problems.push({ key, expected: describeSchema(property), given: 'nothing (not set)' })
      continue
    }
    const value = convert(raw, property)
    if (Value.Check(property, value)) config[key] = value
    else problems.push({ key, expected: expected(property, value, raw), given: shown(key, raw, property) })
  }

  if (problems.length > 0) throw new ConfigError(problems)
  return config as Static<T>
}

export interface ExitIo {
  stderr: { write(text: string): unknown }
  exit(code: number): never
}

const PROCESS_IO: ExitIo = { stderr: process.stderr, exit: (code) => process.exit(code) }

/** For a service's main.ts: load the config, or print every problem and exit 1 before anything connects. */
export function loadConfigOrExit<T extends TObject>(
  schema: T,
  env: Env = process.env,
  io: ExitIo = PROCESS_IO,
): Static<T> {
  return orExit(() => loadConfig(schema, env), io)
}

/**
 * Runs a step that checks configuration (loadConfig, resolveKafkaSecurity, resolveRedisSettings): returns its
 * result, or prints its ConfigError and exits 1. Any other error is thrown on.
 */
export function orExit<T>(step: () => T, io: ExitIo = PROCESS_IO): T {
  try {
    return step()
  } catch (err) {
    return exitOn(err, io)
  }
}

/** As orExit, for a start-up step that connects (credentials, TLS, topics): a StartupError exits 1 with its line. */
export async function orExitAsync<T>(step: Promise<T>, io: ExitIo = PROCESS_IO): Promise<T> {
  try {
    return await step
  } catch (err) {
    return exitOn(err, io)
  }
}

function exitOn(err: unknown, io: ExitIo): never {
  if (!(err instanceof ConfigError) && !(err instanceof StartupError)) throw err
  io.stderr.write(`${err.code}: ${err.message}\n`)
  return io.exit(1)
}
