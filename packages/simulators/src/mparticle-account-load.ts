import { setTimeout as sleep } from 'node:timers/promises'

export interface AccountLoadOptions {
  /** Events API base URL, e.g. `${simulator.url}/v2`. Only 127.0.0.1 in tests and benchmarks. */
  url: string
  key: string
  secret: string
  /** Batches per second this client sends. */
  batchesPerSecond: number
  /** Batches per request (default 1). */
  batchesPerRequest?: number
}

export interface AccountLoadResult {
  requests: number
  batches: number
  /** Requests answered 429. */
  tooMany: number
  /** Requests answered anything else but 202 (or not answered). */
  failed: number
}

export interface AccountLoad {
  /** Stops sending; resolves once the requests in flight are answered. */
  stop(): Promise<AccountLoadResult>
}

/**
 * Another client of the same mParticle account: sends profile batches (no source_request_id, so they never
 * count among a test's own accepted ids) at a steady rate on its own schedule, whatever the answers, using part
 * of the account's limit as another integration of the customer would.
 */
export function startAccountLoad(options: AccountLoadOptions): AccountLoad {
  const perRequest = options.batchesPerRequest ?? 1
  if (!(options.batchesPerSecond > 0) || !Number.isInteger(perRequest) || perRequest < 1 || perRequest > 100) {
    throw new RangeError('batchesPerSecond must be > 0 and batchesPerRequest an integer from 1 to 100')
  }
  const hostname = new URL(options.url).hostname
  if (hostname !== '127.0.0.1' && hostname !== 'localhost')
    throw new Error(`account load only to 127.0.0.1, not ${hostname}`)
  const intervalMs = (1000 * perRequest) / options.batchesPerSecond
  const authorization = `Basic ${Buffer.from(`${options.key}:${options.secret}`).toString('base64')}`
  const result: AccountLoadResult = { requests: 0, batches: 0, tooMany: 0, failed: 0 }
  const controller = new AbortController()
  const inFlight = new Set<Promise<void>>()
  let sequence = 0

  const send = async () => {
    const batches = Array.from({ length: perRequest }, () => ({
      environment: 'production',
      schema_version: 2,
      user_identities: { customer_id: `other-client-${++sequence}` },
      user_attributes: { source: 'other integration' },
    }))
    result.requests++
    result.batches += perRequest
    try {
      const response = await fetch(`${options.url}/bulkevents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify(batches),
        signal: AbortSignal.timeout(10_000),
      })
      await response.arrayBuffer()
      if (response.status === 429) result.tooMany++
      else if (response.status !== 202) result.failed++
    } catch {
      result.failed++
    }
  }

  const loop = (async () => {
    const started = performance.now()
    for (let i = 0; !controller.signal.aborted; i++) {
      const wait = started + i * intervalMs - performance.now()
      if (wait > 0) await sleep(wait, undefined, { signal: controller.signal }).catch(() => undefined)
      if (controller.signal.aborted) break
      const request = send()
      inFlight.add(request)
      void request.finally(() => inFlight.delete(request))
    }
  })()

  return {
    async stop() {
      controller.abort()
      await loop
      await Promise.all(inFlight)
      return { ...result }
    },
  }
}
