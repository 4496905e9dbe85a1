import { seededRandom } from './seeded-random.ts'

export type FaultAction =
  | { type: 'status'; status: number; headers?: Record<string, string>; body?: unknown }
  /** Never answer: the client's own timeout is what ends the request. */
  | { type: 'hang' }
  /** Destroy the socket without a response (ECONNRESET on the client). */
  | { type: 'reset' }

export interface FaultTiming {
  /**
   * Apply the fault after the request was processed and its items recorded: the call succeeded but the client
   * never learns it, the case that makes retries produce duplicates.
   */
  afterAccept?: boolean
}

export type ScriptedFault = FaultAction & FaultTiming & { count: number }
export type FaultRate = FaultAction & FaultTiming & { rate: number }
export type Outage = FaultAction & {
  /** The outage ends this many ms after it starts… */
  durationMs?: number
  /** …or after this many requests, whichever comes first (neither: until cleared). */
  requests?: number
}

export type FaultRule = FaultAction &
  FaultTiming & {
    /** Only requests whose (decoded) body contains this text, e.g. a poisoned messageId. */
    bodyContains?: string
    /** Only requests to this path. */
    path?: string
    /** How many matching requests get the fault; unlimited when absent. */
    count?: number
  }

export interface FaultTarget {
  path: string
  body: Buffer
}

export interface FaultConfig {
  /** Seed for the rate-based faults; without one they use Math.random. */
  seed?: number
  /** Added to every API request before it is handled. */
  latencyMs?: number
  /** Extra uniformly distributed latency in [0, latencyJitterMs). */
  latencyJitterMs?: number
  rates?: FaultRate[]
  /** Targeted faults, checked before everything else (a 400 for any batch holding one bad message, say). */
  rules?: FaultRule[]
  /** Faults for the next requests, in order: each entry applies to `count` requests. */
  script?: ScriptedFault[]
  outage?: Outage
}

export interface FaultDecision {
  latencyMs: number
  action: FaultAction | undefined
  afterAccept: boolean
  label: string | undefined
}

interface ActiveOutage {
  action: FaultAction
  endsAt: number
  requestsLeft: number
}

function actionOf(fault: FaultAction): FaultAction {
  if (fault.type === 'status') {
    const action: FaultAction = { type: 'status', status: fault.status }
    if (fault.headers !== undefined) action.headers = fault.headers
    if (fault.body !== undefined) action.body = fault.body
    return action
  }
  return { type: fault.type }
}

function labelOf(source: string, action: FaultAction): string {
  return action.type === 'status' ? `${source}:${action.status}` : `${source}:${action.type}`
}

export class FaultInjector {
  #random: () => number = Math.random
  #seed: number | undefined
  #latencyMs = 0
  #latencyJitterMs = 0
  #rates: FaultRate[] = []
  #rules: FaultRule[] = []
  #script: ScriptedFault[] = []
  #outage: ActiveOutage | undefined

  constructor(config: FaultConfig = {}) {
    this.configure(config)
  }

  /** Replaces the whole fault configuration. */
  configure(config: FaultConfig): void {
    this.clear()
    this.update(config)
  }

  /** Changes only the parts given. */
  update(config: FaultConfig): void {
    if (config.seed !== undefined) this.setSeed(config.seed)
    if (config.latencyMs !== undefined || config.latencyJitterMs !== undefined) {
      this.setLatency(config.latencyMs ?? this.#latencyMs, config.latencyJitterMs ?? this.#latencyJitterMs)
    }
    if (config.rates !== undefined) this.setRates(config.rates)
    if (config.rules !== undefined) for (const rule of config.rules) this.addRule(rule)
    if (config.script !== undefined) for (const step of config.script) this.failNext(step.count, step)
    if (config.outage !== undefined) this.startOutage(config.outage)
  }

  setSeed(seed: number): void {
    this.#seed = seed
    this.#random = seededRandom(seed)
  }

  setLatency(latencyMs: number, jitterMs = 0): void {
    this.#latencyMs = Math.max(0, latencyMs)
    this.#latencyJitterMs = Math.max(0, jitterMs)
  }

  setRates(rates: FaultRate[]): void {
    this.#rates = rates.map((rate) => ({ ...rate }))
  }

  addRule(rule: FaultRule): void {
    this.#rules.push({ ...rule })
  }

  /** Deterministic: the next `count` requests get this fault (queued behind earlier scripted faults). */
  failNext(count: number, fault: FaultAction & FaultTiming): void {
    if (count <= 0) return
    this.#script.push({ ...fault, count })
  }

  startOutage(outage: Outage, now = Date.now()): void {
    this.#outage = {
      action: actionOf(outage),
      endsAt: outage.durationMs === undefined ? Number.POSITIVE_INFINITY : now + outage.durationMs,
      requestsLeft: outage.requests ?? Number.POSITIVE_INFINITY,
    }
  }

  endOutage(): void {
    this.#outage = undefined
  }

  clear(): void {
    this.#random = Math.random
    this.#seed = undefined
    this.#latencyMs = 0
    this.#latencyJitterMs = 0
    this.#rates = []
    this.#rules = []
    this.#script = []
    this.#outage = undefined
  }

  decide(target?: FaultTarget, now = Date.now()): FaultDecision {
    const latencyMs = this.#latencyMs + (this.#latencyJitterMs > 0 ? this.#random() * this.#latencyJitterMs : 0)
    if (target !== undefined) {
      for (let i = 0; i < this.#rules.length; i++) {
        const rule = this.#rules[i] as FaultRule
        if (rule.path !== undefined && rule.path !== target.path) continue
        if (rule.bodyContains !== undefined && !target.body.includes(rule.bodyContains)) continue
        if (rule.count !== undefined && --rule.count <= 0) this.#rules.splice(i, 1)
        const action = actionOf(rule)
        return { latencyMs, action, afterAccept: rule.afterAccept === true, label: labelOf('rule', action) }
      }
    }
    const step = this.#script[0]
    if (step !== undefined) {
      step.count--
      if (step.count <= 0) this.#script.shift()
      const action = actionOf(step)
      return { latencyMs, action, afterAccept: step.afterAccept === true, label: labelOf('script', action) }
    }
    const outage = this.#outage
    if (outage !== undefined) {
      if (now >= outage.endsAt || outage.requestsLeft <= 0) {
        this.#outage = undefined
      } else {
        outage.requestsLeft--
        return { latencyMs, action: outage.action, afterAccept: false, label: labelOf('outage', outage.action) }
      }
    }
    if (this.#rates.length > 0) {
      // One draw per request, spread over the rates, so "20% 500 and 10% 429" means exactly those shares.
      let draw = this.#random()
      for (const rate of this.#rates) {
        if (draw < rate.rate) {
          const action = actionOf(rate)
          return { latencyMs, action, afterAccept: rate.afterAccept === true, label: labelOf('rate', action) }
        }
        draw -= rate.rate
      }
    }
    return { latencyMs, action: undefined, afterAccept: false, label: undefined }
  }

  snapshot(now = Date.now()): FaultConfig & { outageEndsInMs?: number; outageRequestsLeft?: number } {
    const snapshot: FaultConfig & { outageEndsInMs?: number; outageRequestsLeft?: number } = {
      latencyMs: this.#latencyMs,
      latencyJitterMs: this.#latencyJitterMs,
      rates: this.#rates.map((rate) => ({ ...rate })),
      rules: this.#rules.map((rule) => ({ ...rule })),
      script: this.#script.map((step) => ({ ...step })),
    }
    if (this.#seed !== undefined) snapshot.seed = this.#seed
    const outage = this.#outage
    if (outage !== undefined && now < outage.endsAt && outage.requestsLeft > 0) {
      snapshot.outage = { ...outage.action }
      if (Number.isFinite(outage.endsAt)) snapshot.outageEndsInMs = outage.endsAt - now
      if (Number.isFinite(outage.requestsLeft)) snapshot.outageRequestsLeft = outage.requestsLeft
    }
    return snapshot
  }
}
