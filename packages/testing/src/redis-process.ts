import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Redis } from 'ioredis'
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
  /**
   * A config file passed first (redis-server writes to it on CONFIG REWRITE, which Sentinel sends when it changes a
   * node's role); the command-line arguments still override what it holds.
   */
  configFile?: string
  /** Run as a Sentinel (`redis-server <configFile> --sentinel`); needs configFile, which the sentinel rewrites. */
  sentinel?: boolean
}

export interface RedisProcess {
  /** redis:// or rediss:// (with tls), without credentials. */
  url: string
  port: number
  pid: number
  process: ManagedProcess
  stop(): Promise<void>
  /** Starts a new redis-server with the same options on the same port (after stop(), or after it died). */
  restart(): Promise<RedisProcess>
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
      if (options.sentinel === true && options.configFile === undefined) {
        throw new Error('startRedis: a sentinel needs a configFile (it rewrites it)')
      }
      const storage = options.sentinel === true ? [] : ['--save', '', '--appendonly', 'no']
      const proc = await startManagedProcess({
        name: `redis-server${options.sentinel === true ? ' --sentinel' : ''} on 127.0.0.1:${port}`,
        command: 'redis-server',
        // prettier-ignore
        args: [...(options.configFile === undefined ? [] : [options.configFile]),
          ...(options.sentinel === true ? ['--sentinel'] : []),
          '--bind', '127.0.0.1', ...listen, ...storage, ...acl, ...(options.args ?? [])],
        // A sentinel is ready once it monitors its master.
        readyLine: options.sentinel === true ? /\+monitor master / : /Ready to accept connections/,
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
        restart: () => startRedis({ ...options, port }),
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
  /** The index in `masters` of the master that owns `key`'s slot. */
  masterFor(key: string): Promise<number>
  /**
   * Starts master `index` again on its ports with its cluster config file (it rejoins with its slots, its data
   * gone as after a restart without persistence) and puts it in `masters`.
   */
  restartMaster(index: number): Promise<RedisProcess>
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
    return {
      nodes: addresses.join(','),
      url: `redis://${addresses[0]}`,
      masters,
      async masterFor(key) {
        const admin = new Redis({ host: '127.0.0.1', port: masters[0]!.port, maxRetriesPerRequest: 0 })
        try {
          const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', key))
          const ranges = (await admin.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][]
          const owner = ranges.find(([first, last]) => slot >= first && slot <= last)
          const index = masters.findIndex((m) => m.port === owner?.[2][1])
          if (index === -1) throw new Error(`Redis Cluster: no master owns slot ${slot}`)
          return index
        } finally {
          admin.disconnect()
        }
      },
      async restartMaster(index) {
        masters[index] = await masters[index]!.restart()
        return masters[index]
      },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

export interface RedisSentinelOptions {
  /** The name the sentinels monitor (REDIS_SENTINEL_MASTER); default "lookstream". */
  masterName?: string
  /** Replicas of the first master (default 1). */
  replicas?: number
  /** Sentinel processes (default 1; the quorum is a majority of them). */
  sentinels?: number
  /** How long the master must be unreachable before the sentinels fail over (default 1000 ms). */
  downAfterMs?: number
  /** TLS on every data node, for replication and on the sentinels (rediss://). */
  tls?: { certFile: string; keyFile: string; caFile: string }
  /** ACL users of the data nodes; the first one is also the user replicas and sentinels log in as. */
  users?: Readonly<Record<string, string>>
  /** An ACL user the sentinels require of their clients (REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD). */
  sentinelUser?: { name: string; password: string }
}

export interface RedisSentinelProcess {
  masterName: string
  /** host:port of every sentinel, comma-separated (REDIS_SENTINELS). */
  sentinels: string
  /** redis:// or rediss:// URL of the first master, for REDIS_URL (its scheme tells TLS; its host is not used). */
  url: string
  /** The data nodes; nodes[0] is the master at start. restartNode replaces an entry. */
  nodes: RedisProcess[]
  sentinelProcesses: RedisProcess[]
  /** The master's port as the sentinels report it now. */
  masterPort(): Promise<number>
  /** Waits until the sentinels name a master other than `port` and that node answers as a master. */
  waitForFailover(fromPort: number, timeoutMs?: number): Promise<number>
  /**
   * A planned failover (SENTINEL FAILOVER, the old master keeps running); resolves with the new master's port once
   * the sentinels name it and it answers as a master (the sentinels demote the old one some seconds later).
   */
  failover(): Promise<number>
  /**
   * Starts another master with one replica, with the same TLS and users, and has the same sentinels watch it under
   * `name` (as when one sentinel group serves several applications); `failover()` fails it over as above.
   */
  watchAnotherMaster(name: string): Promise<{ failover(): Promise<number> }>
  /** SENTINEL SET on every sentinel, e.g. ('down-after-milliseconds', '60000'). */
  configure(option: string, value: string): Promise<void>
  /** Starts the data node that listened on `port` again (empty, as after a restart without persistence). */
  restartNode(port: number): Promise<RedisProcess>
  stop(): Promise<void>
}

/**
 * Starts a master, its replicas and `sentinels` Sentinel processes (redis-server --sentinel), all on 127.0.0.1 and
 * in memory, each with a config file in a temporary directory (Sentinel rewrites its own and the nodes' files on a
 * failover). Resolves once the replicas are in sync and every sentinel knows every replica and every other sentinel,
 * so a failover can start at once.
 */
export async function startRedisSentinel(options: RedisSentinelOptions = {}): Promise<RedisSentinelProcess> {
  const masterName = options.masterName ?? 'lookstream'
  const dir = mkdtempSync(join(tmpdir(), 'redis-sentinel-'))
  const nodes: RedisProcess[] = []
  const sentinels: RedisProcess[] = []
  // The data nodes of masters watched beside masterName (watchAnotherMaster).
  const otherNodes: RedisProcess[] = []
  const stop = async () => {
    await Promise.all([...sentinels, ...nodes, ...otherNodes].map((p) => p.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  const [user, password] = Object.entries(options.users ?? {})[0] ?? []
  // Every node may become a replica after a failover: each logs in to its master as the first ACL user.
  const nodeArgs = [
    // A (re)joining replica gets its full sync at once, not after the default 5 s wait for other replicas.
    '--repl-diskless-sync-delay',
    '0',
    ...(options.tls === undefined ? [] : ['--tls-replication', 'yes']),
    ...(user === undefined ? [] : ['--masteruser', user, '--masterauth', password!]),
  ]
  const client = (port: number, sentinel: boolean): Redis =>
    new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      ...(options.tls === undefined ? {} : { tls: { ca: [readFileSync(options.tls.caFile)] } }),
      ...(sentinel
        ? options.sentinelUser === undefined
          ? {}
          : { username: options.sentinelUser.name, password: options.sentinelUser.password }
        : user === undefined
          ? {}
          : { username: user, password: password! }),
    })
  const ask = async <T>(port: number, sentinel: boolean, command: string, ...args: string[]): Promise<T> => {
    const c = client(port, sentinel)
    try {
      await c.connect()
      return (await c.call(command, ...args)) as T
    } finally {
      c.disconnect()
    }
  }
  const until = async (what: string, timeoutMs: number, check: () => Promise<boolean>) => {
    const deadline = Date.now() + timeoutMs
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`Redis Sentinel: ${what} not within ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  const isMaster = async (port: number) => (await ask<string[]>(port, false, 'ROLE'))[0] === 'master'
  const masterPort = async (name = masterName): Promise<number> => {
    for (const s of sentinels) {
      const answer = await ask<[string, string] | null>(
        s.port,
        true,
        'SENTINEL',
        'GET-MASTER-ADDR-BY-NAME',
        name,
      ).catch(() => null)
      if (answer !== null) return Number(answer[1])
    }
    throw new Error('Redis Sentinel: no sentinel named a master')
  }

  try {
    // The role and the ACL users live in the config files, not on the command line: CONFIG REWRITE (which Sentinel
    // sends) writes both there, and a restarted node must come back with what was rewritten, not with duplicates.
    const acl = (users: Readonly<Record<string, string>> | undefined) =>
      users === undefined
        ? ''
        : `${Object.entries(users)
            .map(([name, secret]) => `user ${name} on >${secret} ~* &* +@all\n`)
            .join('')}user default off\n`
    const startNode = (i: number | string, config: string) => {
      const configFile = join(dir, `node-${i}.conf`)
      writeFileSync(configFile, `${config}${acl(options.users)}`)
      return startRedis({ configFile, args: [...nodeArgs, '--dir', dir], tls: options.tls })
    }
    nodes.push(await startNode(0, ''))
    const master = nodes[0]!
    for (let i = 1; i <= (options.replicas ?? 1); i += 1) {
      nodes.push(await startNode(i, `replicaof 127.0.0.1 ${master.port}\n`))
    }
    const inSync = (port: number, replicas: number) =>
      until('the replicas in sync', 20_000, async () => {
        const info = await ask<string>(port, false, 'INFO', 'replication')
        return (info.match(/state=online/g) ?? []).length === replicas
      })
    await inSync(master.port, nodes.length - 1)

    const count = options.sentinels ?? 1
    const quorum = Math.floor(count / 2) + 1
    // [option, value] of every watched master, as config lines and as SENTINEL SET.
    const watchSettings: [string, string][] = [
      ['down-after-milliseconds', String(options.downAfterMs ?? 1000)],
      ['failover-timeout', '10000'],
      ...(user === undefined
        ? []
        : ([
            ['auth-user', user],
            ['auth-pass', password!],
          ] as [string, string][])),
    ]
    for (let i = 0; i < count; i += 1) {
      const lines = [
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${master.port} ${quorum}`,
        ...watchSettings.map(([option, value]) => `sentinel ${option} ${masterName} ${value}`),
        ...(options.sentinelUser === undefined
          ? []
          : [
              `sentinel sentinel-user ${options.sentinelUser.name}`,
              `sentinel sentinel-pass ${options.sentinelUser.password}`,
            ]),
      ]
      const configFile = join(dir, `sentinel-${i}.conf`)
      const sentinelUsers =
        options.sentinelUser === undefined ? undefined : { [options.sentinelUser.name]: options.sentinelUser.password }
      writeFileSync(configFile, `${lines.join('\n')}\n${acl(sentinelUsers)}`)
      sentinels.push(
        await startRedis({
          configFile,
          sentinel: true,
          ...(options.tls === undefined ? {} : { tls: options.tls, args: ['--tls-replication', 'yes'] }),
        }),
      )
    }
    const known = (name: string, replicaCount: number) =>
      until('every sentinel to know every replica and sentinel', 20_000, async () => {
        for (const s of sentinels) {
          const replicas = await ask<string[][]>(s.port, true, 'SENTINEL', 'REPLICAS', name)
          const others = await ask<string[][]>(s.port, true, 'SENTINEL', 'SENTINELS', name)
          if (replicas.length !== replicaCount || others.length !== sentinels.length - 1) return false
        }
        return true
      })
    await known(masterName, nodes.length - 1)

    const plannedFailover = async (name: string) => {
      const from = await masterPort(name)
      // Refused (NOGOODSLAVE) until a replica is in sync and the sentinels have seen it so: ask again until then.
      await until('a sentinel to start a planned failover', 30_000, () =>
        ask(sentinels[0]!.port, true, 'SENTINEL', 'FAILOVER', name).then(() => true),
      )
      let port = from
      await until('a planned failover', 30_000, async () => {
        port = await masterPort(name)
        return port !== from && (await isMaster(port))
      })
      return port
    }

    return {
      masterName,
      sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      url: master.url,
      nodes,
      sentinelProcesses: sentinels,
      masterPort,
      async waitForFailover(fromPort, timeoutMs = 30_000) {
        let port = fromPort
        await until(`a failover away from port ${fromPort}`, timeoutMs, async () => {
          port = await masterPort()
          return port !== fromPort && (await isMaster(port))
        })
        return port
      },
      failover: () => plannedFailover(masterName),
      async watchAnotherMaster(name) {
        const other = await startNode(`${name}-0`, '')
        otherNodes.push(other)
        otherNodes.push(await startNode(`${name}-1`, `replicaof 127.0.0.1 ${other.port}\n`))
        await inSync(other.port, 1)
        for (const s of sentinels) {
          await ask(s.port, true, 'SENTINEL', 'MONITOR', name, '127.0.0.1', String(other.port), String(quorum))
          for (const [option, value] of watchSettings) {
            await ask(s.port, true, 'SENTINEL', 'SET', name, option, value)
          }
        }
        await known(name, 1)
        return { failover: () => plannedFailover(name) }
      },
      async configure(option, value) {
        for (const s of sentinels) await ask(s.port, true, 'SENTINEL', 'SET', masterName, option, value)
      },
      async restartNode(port) {
        const index = nodes.findIndex((n) => n.port === port)
        if (index === -1) throw new Error(`Redis Sentinel: no data node on port ${port}`)
        nodes[index] = await nodes[index]!.restart()
        return nodes[index]
      },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}
