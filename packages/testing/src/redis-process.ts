import { freePort } from './free-port.ts'
import { ProcessStartError, startManagedProcess, type ManagedProcess } from './managed-process.ts'

export interface RedisOptions {
  /** A fixed port; a free one when omitted. */
  port?: number
  /** Extra redis-server arguments, e.g. ['--maxmemory', '10mb']. */
  args?: readonly string[]
}

export interface RedisProcess {
  url: string
  port: number
  pid: number
  process: ManagedProcess
  stop(): Promise<void>
}

const ATTEMPTS = 3

/**
 * Starts a redis-server of its own on 127.0.0.1, in memory (no RDB, no AOF). Tests that stop or
 * restart Redis use one of these rather than the shared one.
 */
export async function startRedis(options: RedisOptions = {}): Promise<RedisProcess> {
  for (let attempt = 1; ; attempt += 1) {
    const port = options.port ?? (await freePort())
    try {
      const proc = await startManagedProcess({
        name: `redis-server on 127.0.0.1:${port}`,
        command: 'redis-server',
        args: [
          '--bind',
          '127.0.0.1',
          '--port',
          String(port),
          '--save',
          '',
          '--appendonly',
          'no',
          ...(options.args ?? []),
        ],
        readyLine: /Ready to accept connections/,
        readyTimeoutMs: 15_000,
      })
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        pid: proc.pid,
        process: proc,
        async stop() {
          await proc.stop('SIGTERM', 5_000)
        },
      }
    } catch (err) {
      // The free port may have been taken between choosing and binding it: try another one.
      const raced = err instanceof ProcessStartError && /Address already in use/.test(err.message)
      if (!raced || options.port !== undefined || attempt >= ATTEMPTS) {
        if (err instanceof ProcessStartError && /not found on PATH/.test(err.message)) {
          throw new ProcessStartError(
            `${err.message}: install it with "apt-get install -y --no-install-recommends redis-server" (npm test does this when run as root)`,
            { cause: err },
          )
        }
        throw err
      }
    }
  }
}
