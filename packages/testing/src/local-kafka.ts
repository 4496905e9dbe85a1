import { readFile } from 'node:fs/promises'
import { trackPid } from './child-registry.ts'

// The contract of @lookstream/local-kafka's startLocalKafka (docs/adr/0002-local-kafka-broker.md). It is loaded
// dynamically so that the harness keeps working for everything else while the broker is absent.
export interface LocalKafkaOptions {
  port?: number
  dataDir?: string
  inMemory?: boolean
  partitions?: number
  initialRebalanceDelayMs?: number
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent'
  onStderr?: (chunk: string) => void
  /** TLS listener with these PEM files (SSL, or SASL_SSL with sasl). */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string }
  /** Require SASL with these users (name → password). */
  sasl?: { users?: Record<string, string>; mechanisms?: readonly string[] }
}

export interface LocalKafka {
  brokers: string
  port: number
  pid: number
  dataDir?: string
  stop(): Promise<void>
  kill(signal: NodeJS.Signals): void
  /** Resolves with the exit code when the process has exited. */
  exited?: Promise<number | null>
}

export type StartLocalKafka = (options?: LocalKafkaOptions) => Promise<LocalKafka>

// vitest loads its globalSetup without the "@lookstream/source" export condition, so a bare import
// would pick local-kafka's compiled dist/ (stale, or absent on a fresh clone). Its TypeScript source
// is imported by path instead: the packages sit side by side in the workspace.
async function localKafkaSourceUrl(): Promise<string> {
  for (const up of ['../../local-kafka/', '../../../local-kafka/']) {
    const dir = new URL(up, import.meta.url)
    try {
      const manifest = JSON.parse(await readFile(new URL('package.json', dir), 'utf8')) as {
        name?: string
        exports?: { '.'?: { '@lookstream/source'?: string } }
      }
      const source = manifest.exports?.['.']?.['@lookstream/source']
      if (manifest.name === '@lookstream/local-kafka' && source) return new URL(source, dir).href
    } catch {
      // not this layout
    }
  }
  return '@lookstream/local-kafka'
}

/** startLocalKafka from @lookstream/local-kafka, or a reason why it is not available. */
export async function loadLocalKafka(): Promise<{ start: StartLocalKafka } | { unavailable: string }> {
  try {
    const module = (await import(await localKafkaSourceUrl())) as { startLocalKafka?: unknown }
    if (typeof module.startLocalKafka !== 'function') {
      return { unavailable: '@lookstream/local-kafka does not export startLocalKafka yet' }
    }
    return { start: module.startLocalKafka as StartLocalKafka }
  } catch (err) {
    return { unavailable: `@lookstream/local-kafka failed to load: ${(err as Error).message}` }
  }
}

/** Starts local-kafka and registers its PID so that an exiting test process takes it down too. */
export async function startLocalKafkaTracked(start: StartLocalKafka, options: LocalKafkaOptions): Promise<LocalKafka> {
  const kafka = await start(options)
  const untrack = trackPid(kafka.pid)
  void kafka.exited?.then(untrack)
  return {
    ...kafka,
    async stop() {
      await kafka.stop()
      untrack()
    },
  }
}
