import { startManagedProcess, type ManagedProcess, type ProcessExit } from './managed-process.ts'

export interface SpawnServiceOptions {
  /**
   * A line that means "listening"; group 1 must capture the base URL. Default: Fastify's info-level
   * "Server listening at" line. Not needed when env.PORT is a fixed port.
   */
  listenLine?: RegExp
  /** Polled after the listen line until it answers 200; null to skip. Default '/readyz'. */
  readyPath?: string | null
  readyTimeoutMs?: number
  cwd?: string
  /** Pass the whole parent environment instead of PATH/HOME/TMPDIR/LANG only. */
  inheritEnv?: boolean
  /** Node options placed before the entry point, e.g. ['--max-semi-space-size=8']. */
  nodeArgs?: string[]
  /** Arguments after the entry point (a CLI's flags). */
  args?: string[]
  /**
   * The entry is compiled JavaScript (a dist/ file, as production runs it): start it without the
   * `@lookstream/source` condition, so workspace packages resolve to their dist/ builds too.
   */
  compiled?: boolean
}

export interface SpawnedService {
  pid: number
  url: string
  process: ManagedProcess
  /** Parsed JSON log lines so far (non-JSON lines are skipped). */
  logs(): Record<string, unknown>[]
  /** SIGTERM (by default), then SIGKILL after graceMs. Resolves with how it exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ProcessExit>
  kill(signal?: NodeJS.Signals): void
}

const FASTIFY_LISTENING = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/
const BASE_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG']

/**
 * Runs a service's TypeScript entry point as a real process (the way `npm start` does), waits until
 * it logs its address and answers readyPath with 200, and returns a handle that stops it by PID.
 */
export async function spawnService(
  entryTs: string,
  env: Record<string, string> = {},
  options: SpawnServiceOptions = {},
): Promise<SpawnedService> {
  const { listenLine = FASTIFY_LISTENING, readyPath = '/readyz', readyTimeoutMs = 30_000 } = options
  const base = options.inheritEnv
    ? { ...process.env }
    : Object.fromEntries(BASE_ENV.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]))
  // With a fixed PORT the address is known up front; with PORT=0 it comes from the listen line
  // (Fastify logs it at info level, so such services need LOG_LEVEL info or lower).
  const fixedPort = Number(env.PORT)
  let url: string | undefined =
    Number.isInteger(fixedPort) && fixedPort > 0 ? `http://${env.HOST ?? '127.0.0.1'}:${fixedPort}` : undefined
  const proc = await startManagedProcess({
    name: entryTs,
    command: process.execPath,
    args: [
      ...(options.compiled === true ? [] : ['--conditions=@lookstream/source']),
      ...(options.nodeArgs ?? []),
      entryTs,
      ...(options.args ?? []),
    ],
    env: { ...base, LOOKSTREAM_EXIT_WITH_PARENT: '1', ...env },
    cwd: options.cwd,
    onLine: (line) => {
      url ??= listenLine.exec(line)?.[1]
    },
    readyLine: readyPath === null ? listenLine : undefined,
    readyCheck:
      readyPath === null
        ? undefined
        : async () => {
            if (url === undefined) return false
            const res = await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(2_000) })
            await res.body?.cancel()
            return res.status === 200
          },
    readyTimeoutMs,
    keepLines: 10_000,
  })
  if (url === undefined) {
    await proc.stop('SIGKILL', 1_000)
    throw new Error(`${entryTs}: the listen line did not capture a URL`)
  }
  return {
    pid: proc.pid,
    url,
    process: proc,
    logs: () =>
      proc.lines().flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>]
        } catch {
          return []
        }
      }),
    stop: (signal = 'SIGTERM', graceMs = 10_000) => proc.stop(signal, graceMs),
    kill: (signal = 'SIGTERM') => proc.kill(signal),
  }
}
