/** The Redis commands the registry uses: an ioredis client or cluster satisfies it. */
export interface RegistryRedis {
  eval(script: string, numberOfKeys: number, ...args: string[]): Promise<unknown>
}

// The live destination registry: every running replica of a destination service keeps one field of the hash
// `lookstream:registry` fresh (its destination, the names of its connections, its version; never a secret),
// each field stamped with an expiry on Redis time. Readers (the ingress) take the fields whose expiry has not
// passed, and clear the others. One key, so it lives on one Redis Cluster slot; the clocks of the hosts do not
// matter, only Redis's. See docs/adr/0011-destination-registry.md.

export const REGISTRY_KEY = 'lookstream:registry'

/** Settings of one connection a destination announces so the ingress can check a send first (never a secret). */
export type ConnectionSettings = Record<string, string | string[]>

export interface RegistryEntry {
  destination: string
  instance: string
  version: string
  connections: string[]
  startedAt: string
  /** Per connection name, e.g. Heap's `{ environment, environments }`; absent for most destinations. */
  settings?: Record<string, ConnectionSettings>
}

export interface LiveDestination {
  destination: string
  /** Union of the connections of its live replicas, sorted. */
  connections: string[]
  instances: number
  versions: string[]
  /** Per connection name, the announced settings (a later replica's entry replaces an earlier one's). */
  settings: Record<string, ConnectionSettings>
}

// KEYS[1] registry; ARGV: field, ttl ms, entry JSON. The value is "<expires at ms>|<entry JSON>".
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], (now + tonumber(ARGV[2])) .. '|' .. ARGV[3])
return now
`

// KEYS[1] registry. Returns the live entries' JSON; removes the expired fields.
const LIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local value = all[i + 1]
  local bar = string.find(value, '|', 1, true)
  local expires = bar and tonumber(string.sub(value, 1, bar - 1)) or 0
  if expires > now then
    live[#live + 1] = string.sub(value, bar + 1)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
`

/** Keeps one replica registered while it runs. */
export class RegistryHeartbeat {
  readonly #redis: RegistryRedis
  readonly #field: string
  readonly #entry: string
  readonly #ttlMs: number

  constructor(redis: RegistryRedis, entry: RegistryEntry, intervalMs: number) {
    this.#redis = redis
    this.#field = `${entry.destination}/${entry.instance}`
    this.#entry = JSON.stringify(entry)
    // Three missed beats before a replica counts as gone: one slow beat is not an outage.
    this.#ttlMs = intervalMs * 3
  }

  async beat(): Promise<void> {
    await this.#redis.eval(HEARTBEAT, 1, REGISTRY_KEY, this.#field, String(this.#ttlMs), this.#entry)
  }
}

function isEntry(value: unknown): value is RegistryEntry {
  const entry = value as RegistryEntry
  return (
    typeof entry === 'object' &&
    entry !== null &&
    typeof entry.destination === 'string' &&
    typeof entry.instance === 'string' &&
    typeof entry.version === 'string' &&
    Array.isArray(entry.connections) &&
    entry.connections.every((name) => typeof name === 'string') &&
    (entry.settings === undefined || isSettings(entry.settings))
  )
}

function isSettings(value: unknown): value is Record<string, ConnectionSettings> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  return Object.values(value).every(
    (settings) =>
      typeof settings === 'object' &&
      settings !== null &&
      !Array.isArray(settings) &&
      Object.values(settings as object).every(
        (v) => typeof v === 'string' || (Array.isArray(v) && v.every((item) => typeof item === 'string')),
      ),
  )
}

/** The destinations with at least one live replica, by destination id. */
export async function liveDestinations(redis: RegistryRedis): Promise<Map<string, LiveDestination>> {
  const values = (await redis.eval(LIVE, 1, REGISTRY_KEY)) as string[]
  const result = new Map<string, LiveDestination>()
  for (const value of values) {
    let entry: unknown
    try {
      entry = JSON.parse(value)
    } catch {
      continue
    }
    if (!isEntry(entry)) continue
    let live = result.get(entry.destination)
    if (live === undefined) {
      live = { destination: entry.destination, connections: [], instances: 0, versions: [], settings: {} }
      result.set(entry.destination, live)
    }
    live.instances++
    for (const name of entry.connections) if (!live.connections.includes(name)) live.connections.push(name)
    if (!live.versions.includes(entry.version)) live.versions.push(entry.version)
    if (entry.settings !== undefined) Object.assign(live.settings, entry.settings)
  }
  for (const live of result.values()) {
    live.connections.sort()
    live.versions.sort()
  }
  return result
}
