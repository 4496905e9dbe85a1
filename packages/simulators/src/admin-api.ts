import { AdminInputError } from './admin-input-error.ts'
import {
  type FaultAction,
  type FaultConfig,
  type FaultInjector,
  type FaultRule,
  type FaultTiming,
  type Outage,
} from './fault-injector.ts'
import { isRecord } from './json-body.ts'
import { type AdminRequest, type SimulatorDefinition, type SimulatorResponse } from './simulator-server.ts'
import { type SimulatorState } from './simulator-state.ts'
import { type RingBuffer } from './ring-buffer.ts'
import { type WindowLimit } from './window-rate-limiter.ts'

export interface AdminContext {
  definition: SimulatorDefinition
  state: SimulatorState
  faults: FaultInjector
  reset(): void
}

function optionalNumber(body: Record<string, unknown>, key: string): number | undefined {
  const value = body[key]
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new AdminInputError(`${key} must be a non-negative number`)
  }
  return value
}

function parseHeaders(value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined
  if (!isRecord(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new AdminInputError('headers must be an object of strings')
  }
  return value as Record<string, string>
}

function parseAction(body: Record<string, unknown>): FaultAction & FaultTiming {
  const type = body.type ?? 'status'
  const timing: FaultTiming = body.afterAccept === true ? { afterAccept: true } : {}
  if (type === 'hang' || type === 'reset') return { type, ...timing }
  if (type !== 'status') throw new AdminInputError('type must be "status", "hang" or "reset"')
  const status = body.status
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new AdminInputError('status must be an HTTP status code')
  }
  const action: FaultAction & FaultTiming = { type: 'status', status, ...timing }
  const headers = parseHeaders(body.headers)
  if (headers !== undefined) action.headers = headers
  if (body.body !== undefined) action.body = body.body
  return action
}

function parseFaultConfig(body: unknown): FaultConfig {
  if (!isRecord(body)) throw new AdminInputError('body must be a JSON object')
  const config: FaultConfig = {}
  const seed = optionalNumber(body, 'seed')
  if (seed !== undefined) config.seed = seed
  const latencyMs = optionalNumber(body, 'latencyMs')
  if (latencyMs !== undefined) config.latencyMs = latencyMs
  const latencyJitterMs = optionalNumber(body, 'latencyJitterMs')
  if (latencyJitterMs !== undefined) config.latencyJitterMs = latencyJitterMs
  if (body.rates !== undefined) {
    if (!Array.isArray(body.rates)) throw new AdminInputError('rates must be an array')
    config.rates = body.rates.map((entry: unknown) => {
      if (!isRecord(entry)) throw new AdminInputError('each rate must be an object')
      const rate = optionalNumber(entry, 'rate')
      if (rate === undefined || rate > 1) throw new AdminInputError('rate must be a number between 0 and 1')
      return { ...parseAction(entry), rate }
    })
  }
  if (body.rules !== undefined) {
    if (!Array.isArray(body.rules)) throw new AdminInputError('rules must be an array')
    config.rules = body.rules.map(parseRule)
  }
  if (body.script !== undefined) {
    if (!Array.isArray(body.script)) throw new AdminInputError('script must be an array')
    config.script = body.script.map((entry: unknown) => {
      if (!isRecord(entry)) throw new AdminInputError('each script step must be an object')
      return { ...parseAction(entry), count: optionalNumber(entry, 'count') ?? 1 }
    })
  }
  if (body.outage !== undefined) config.outage = parseOutage(body.outage)
  return config
}

function parseRule(entry: unknown): FaultRule {
  if (!isRecord(entry)) throw new AdminInputError('each rule must be an object')
  const rule: FaultRule = parseAction(entry)
  for (const key of ['bodyContains', 'path'] as const) {
    const value = entry[key]
    if (value === undefined) continue
    if (typeof value !== 'string' || value === '') throw new AdminInputError(`${key} must be a non-empty string`)
    rule[key] = value
  }
  const count = optionalNumber(entry, 'count')
  if (count !== undefined) rule.count = count
  return rule
}

function parseOutage(body: unknown): Outage {
  if (!isRecord(body)) throw new AdminInputError('outage must be a JSON object')
  const { afterAccept: _ignored, ...action } = parseAction(body)
  const outage: Outage = action
  const durationMs = optionalNumber(body, 'durationMs')
  if (durationMs !== undefined) outage.durationMs = durationMs
  const requests = optionalNumber(body, 'requests')
  if (requests !== undefined) outage.requests = requests
  return outage
}

function pageParams(query: URLSearchParams): { offset: number; limit: number } {
  const offset = Number(query.get('offset') ?? 0)
  const limit = Number(query.get('limit') ?? Number.POSITIVE_INFINITY)
  if (!Number.isInteger(offset) || offset < 0 || !(limit >= 0)) {
    throw new AdminInputError('offset and limit must be non-negative integers')
  }
  return { offset, limit }
}

function page<T>(buffer: RingBuffer<T>, query: URLSearchParams): SimulatorResponse {
  const { offset, limit } = pageParams(query)
  return { status: 200, body: { total: buffer.size, evicted: buffer.evicted, items: buffer.toArray(offset, limit) } }
}

function rateLimitsOf(definition: SimulatorDefinition): Record<string, WindowLimit | null> {
  return Object.fromEntries(Object.entries(definition.rateLimits).map(([name, limiter]) => [name, limiter.limit]))
}

function setRateLimits(definition: SimulatorDefinition, body: unknown): void {
  if (!isRecord(body)) throw new AdminInputError('body must be a JSON object')
  const updates: [string, WindowLimit | null][] = []
  for (const [name, value] of Object.entries(body)) {
    if (definition.rateLimits[name] === undefined) {
      throw new AdminInputError(`unknown rate limit "${name}"; known: ${Object.keys(definition.rateLimits).join(', ')}`)
    }
    if (value === null) {
      updates.push([name, null])
      continue
    }
    if (!isRecord(value)) throw new AdminInputError(`${name} must be {limit, windowMs} or null`)
    const limit = optionalNumber(value, 'limit')
    const windowMs = optionalNumber(value, 'windowMs')
    if (limit === undefined || windowMs === undefined || windowMs === 0) {
      throw new AdminInputError(`${name} needs a limit and a positive windowMs`)
    }
    updates.push([name, { limit, windowMs }])
  }
  for (const [name, limit] of updates) definition.rateLimits[name]?.setLimit(limit)
}

function route(request: AdminRequest, context: AdminContext): SimulatorResponse | undefined {
  const { definition, state, faults } = context
  const { method, path, query, body } = request
  const key = `${method} ${path}`
  switch (key) {
    case 'GET /':
    case 'GET /state':
      return {
        status: 200,
        body: {
          simulator: definition.name,
          counters: state.summary(),
          faults: faults.snapshot(),
          rateLimits: rateLimitsOf(definition),
          ...definition.describe?.(),
        },
      }
    case 'GET /accepted':
      return page(state.accepted, query)
    case 'GET /rejected':
      return page(state.rejected, query)
    case 'GET /duplicates':
      return page(state.duplicates, query)
    case 'GET /skipped':
      return page(state.skipped, query)
    case 'GET /requests':
      return page(state.requests, query)
    case 'GET /ids': {
      const { offset, limit } = pageParams(query)
      const ids: [string, number][] = []
      let i = 0
      for (const entry of state.acceptedIds) {
        if (ids.length >= limit) break
        if (i++ >= offset) ids.push(entry)
      }
      return { status: 200, body: { total: state.acceptedIds.size, ids } }
    }
    case 'POST /reset':
      context.reset()
      return { status: 200, body: { reset: true } }
    case 'GET /faults':
      return { status: 200, body: faults.snapshot() }
    case 'PUT /faults':
      faults.configure(parseFaultConfig(body ?? {}))
      return { status: 200, body: faults.snapshot() }
    case 'PATCH /faults':
      faults.update(parseFaultConfig(body ?? {}))
      return { status: 200, body: faults.snapshot() }
    case 'DELETE /faults':
      faults.clear()
      return { status: 200, body: faults.snapshot() }
    case 'POST /faults/next': {
      if (!isRecord(body)) throw new AdminInputError('body must be a JSON object')
      faults.failNext(optionalNumber(body, 'count') ?? 1, parseAction(body))
      return { status: 200, body: faults.snapshot() }
    }
    case 'POST /faults/rules':
      faults.addRule(parseRule(body))
      return { status: 200, body: faults.snapshot() }
    case 'POST /faults/outage':
      faults.startOutage(parseOutage(body))
      return { status: 200, body: faults.snapshot() }
    case 'DELETE /faults/outage':
      faults.endOutage()
      return { status: 200, body: faults.snapshot() }
    case 'GET /rate-limits':
      return { status: 200, body: rateLimitsOf(definition) }
    case 'PUT /rate-limits':
      setRateLimits(definition, body)
      return { status: 200, body: rateLimitsOf(definition) }
    default:
      return definition.admin?.(request)
  }
}

export function handleAdminRequest(request: AdminRequest, context: AdminContext): SimulatorResponse {
  try {
    return (
      route(request, context) ?? { status: 404, body: { error: `no admin route ${request.method} ${request.path}` } }
    )
  } catch (err) {
    if (err instanceof AdminInputError) return { status: 400, body: { error: err.message } }
    throw err
  }
}
