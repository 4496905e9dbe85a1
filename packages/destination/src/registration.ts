import { RegistryHeartbeat, type ConnectionSettings, type RegistryRedis } from '@lookstream/events'
import type { Service } from '@lookstream/service'
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Logger } from 'pino'

const RUNTIME_VERSION = '0.1.0'

export interface Registration {
  destination: string
  connections: readonly string[]
  /** Non-secret settings per connection the ingress may check a send against (publicSettings). */
  settings?: Record<string, ConnectionSettings>
  /** Announced version (default: LOOKSTREAM_VERSION, else the runtime's). */
  version?: string | undefined
  intervalMs: number
  /** Each heartbeat's outcome: whether Redis took it (the runtimes' Redis gate hears of an outage from it). */
  onBeat?: (ok: boolean, err?: unknown) => void
}

/**
 * Registers this replica in the destination registry and keeps it there while the service runs: the ingress
 * offers the destination, with these connection names, only while a replica beats
 * (docs/adr/0011-destination-registry.md). Used by the HTTP and the file runtimes alike.
 */
export async function registerWhileRunning(
  service: Service,
  redis: RegistryRedis,
  registration: Registration,
  log: Logger,
): Promise<void> {
  const heartbeat = new RegistryHeartbeat(
    redis,
    {
      destination: registration.destination,
      instance: `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
      version: registration.version ?? process.env.LOOKSTREAM_VERSION ?? RUNTIME_VERSION,
      connections: [...registration.connections],
      startedAt: new Date().toISOString(),
      ...(registration.settings === undefined ? {} : { settings: registration.settings }),
    },
    registration.intervalMs,
  )
  const beat = () =>
    heartbeat.beat().then(
      () => registration.onBeat?.(true),
      (err: unknown) => {
        // Reported through onBeat (the gate: one warning per outage, the gauge, /readyz); the entry simply expires
        // if the outage lasts.
        log.debug({ err }, 'registry heartbeat failed')
        registration.onBeat?.(false, err)
      },
    )
  await beat()
  const beating = setInterval(() => void beat(), registration.intervalMs)
  beating.unref()
  service.app.addHook('onClose', () => {
    clearInterval(beating)
  })
}
