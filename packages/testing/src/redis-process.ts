import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.ts'
import { ProcessStartError, startManagedProcess, type ManagedProcess } from './managed-process.ts'

export interface RedisOptions {
  /** A fixed port; a free one when omitted. */
  port?: number
  /** Extra redis-server arguments, e.g. ['--maxmemory', '10mb']. */
  args?: readonly string[]
  /** Serve TLS only (rediss://) with these PEM files; client certificates are not required. */
  tls?: { certFile: string; keyFile: string; caFile: string }
  /** ACL users (name → password, all commands and keys); the default user is then disabled. */
  users?: Readonly<Record<string, string>>
}

export interface RedisProcess {
  /** redis:// or rediss:// (with tls), without credentials. */
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
      const listen = options.tls
        ? // prettier-ignore
          ['--port', '0', '--tls-port', String(port), '--tls-cert-file', options.tls.certFile,
            '--tls-key-file', options.tls.keyFile, '--tls-ca-cert-file', options.tls.caFile, '--tls-auth-clients', 'no']
        : ['--port', String(port)]
      const acl = Object.entries(options.users ?? {}).flatMap(([name, password]) => [
        '--user',
        name,
        'on',
        `>${password}`,
        '~*',
        '&*',
        '+@all',
      ])
      if (options.users !== undefined) acl.push('--user', 'default', 'off')
      const proc = await startManagedProcess({
        name: `redis-server on 127.0.0.1:${port}`,
        command: 'redis-server',
        args: ['--bind', '127.0.0.1', ...listen, '--save', '', '--appendonly', 'no', ...acl, ...(options.args ?? [])],
        readyLine: /Ready to accept connections/,
        readyTimeoutMs: 15_000,
      })
      return {
        url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
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

export interface RedisClusterProcess {
  /** host:port of every master, comma-separated (REDIS_CLUSTER_NODES). */
  nodes: string
  /** redis:// URL of the first master (REDIS_URL with REDIS_MODE=cluster). */
  url: string
  masters: RedisProcess[]
  stop(): Promise<void>
}

function cli(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', [...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${stderr || err.message}`))
      else resolve(stdout)
    })
  })
}

/**
 * Starts a Redis Cluster of `masters` redis-server processes (no replicas) on 127.0.0.1, each in memory with its
 * own cluster bus port, and waits until every node reports cluster_state:ok with all 16384 slots assigned.
 */
export async function startRedisCluster(options: { masters?: number } = {}): Promise<RedisClusterProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'))
  const masters: RedisProcess[] = []
  const stop = async () => {
    await Promise.all(masters.map((m) => m.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < (options.masters ?? 3); i += 1) {
      const busPort = await freePort()
      masters.push(
        await startRedis({
          // prettier-ignore
          args: ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-node-timeout', '2000',
            '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--dir', dir],
        }),
      )
    }
    const addresses = masters.map((m) => `127.0.0.1:${m.port}`)
    await cli(['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'])
    const deadline = Date.now() + 20_000
    for (const master of masters) {
      for (;;) {
        const info = await cli(['-p', String(master.port), 'cluster', 'info'])
        if (/cluster_state:ok/.test(info) && /cluster_slots_assigned:16384/.test(info)) break
        if (Date.now() > deadline) throw new Error(`Redis Cluster node ${master.port} not ready: ${info}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    return { nodes: addresses.join(','), url: `redis://${addresses[0]}`, masters, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
