import { liveDestinations, type LiveDestination, type RegistryRedis } from '@lookstream/events'

// What the ingress knows of the running destination services: the live entries of the destination registry
// (packages/events/src/registry.ts), read at most once per `cacheMs` and never waited on longer than
// `timeoutMs`. A Looker list, form or execute therefore costs no Redis call in the common case, and a Redis
// outage answers "unknown" within the timeout instead of hanging the request.

export type DirectoryView =
  { known: true; live: ReadonlyMap<string, LiveDestination> } | { known: false; reason: string }

export interface DestinationDirectory {
  view(): Promise<DirectoryView>
}

export interface DirectoryOptions {
  cacheMs: number
  timeoutMs: number
}

export function createDestinationDirectory(redis: RegistryRedis, options: DirectoryOptions): DestinationDirectory {
  let cached: { at: number; view: DirectoryView } | undefined
  let pending: Promise<DirectoryView> | undefined

  const read = async (): Promise<DirectoryView> => {
    let timer: NodeJS.Timeout | undefined
    try {
      const live = await Promise.race([
        liveDestinations(redis),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs)
        }),
      ])
      return { known: true, live }
    } catch (err) {
      return { known: false, reason: `the destination registry in Redis could not be read (${(err as Error).message})` }
    } finally {
      clearTimeout(timer)
    }
  }

  return {
    async view() {
      const now = Date.now()
      if (cached !== undefined && now - cached.at < options.cacheMs) return cached.view
      // Concurrent callers share one read.
      pending ??= read().finally(() => {
        pending = undefined
      })
      const view = await pending
      // A failed read is not cached: the next request tries again.
      if (view.known) cached = { at: Date.now(), view }
      return view
    },
  }
}

/** Why a send to this destination and connection cannot be delivered now, or undefined when it can. */
export function unavailableReason(
  view: DirectoryView,
  destination: string,
  label: string,
  connection?: string,
): string | undefined {
  if (!view.known) return `lookstream cannot tell whether a ${label} service is running: ${view.reason}`
  const live = view.live.get(destination)
  if (live === undefined) {
    return `no ${label} delivery service is running in lookstream (destination "${destination}" is not registered), so nothing would deliver this send; ask your lookstream operator to start it`
  }
  if (connection !== undefined && !live.connections.includes(connection)) {
    const known = live.connections.map((name) => `"${name}"`).join(', ')
    return `the ${label} service has no connection named "${connection}" (its connections: ${known})`
  }
  return undefined
}
