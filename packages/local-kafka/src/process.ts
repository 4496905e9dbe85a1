import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface StartLocalKafkaOptions {
  // 0 (default) picks a free port.
  port?: number
  // Port announced to clients in Metadata (default: the bound port).
  advertisedPort?: number
  // Default: a fresh temporary directory (ignored with inMemory).
  dataDir?: string
  inMemory?: boolean
  partitions?: number
  initialRebalanceDelayMs?: number
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent'
  retentionMs?: number
  retentionBytes?: number
  segmentBytes?: number
  retentionCheckMs?: number
  fsync?: boolean
  // How long to wait for the listening line (default 20 s).
  startTimeoutMs?: number
  // Where the broker's stderr (its JSON log) goes; default: kept in memory for error messages only.
  onStderr?: (chunk: string) => void
  // Serve TLS with these PEM files; clientCaFile makes client certificates mandatory.
  tls?: { certFile: string; keyFile: string; clientCaFile?: string }
  // Require SASL. Users given here are passed in a private temporary file, not on the command line.
  sasl?: { users?: Record<string, string>; usersFile?: string; mechanisms?: readonly string[] }
}

export interface LocalKafka {
  brokers: string
  port: number
  pid: number
  dataDir: string | undefined
  // SIGTERM, then SIGKILL if it has not exited within 10 s; resolves once the process is gone.
  stop(): Promise<void>
  kill(signal: NodeJS.Signals): void
  // Resolves when the process has exited (for kill -9 tests).
  exited: Promise<number | null>
}

// The CLI always runs from its TypeScript source, also when this module was loaded from the compiled dist/.
const CLI = [new URL('./cli.ts', import.meta.url), new URL('../../src/cli.ts', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p))!
const LISTENING = /local-kafka listening on 127\.0\.0\.1:(\d+)/
const STOP_GRACE_MS = 10_000

// Starts the broker as its own process (same Node binary), so the caller's CPU use cannot stall the
// broker's event loop (kafkajs times fetches out at max wait + 100 ms).
export async function startLocalKafka(opts: StartLocalKafkaOptions = {}): Promise<LocalKafka> {
  const dataDir = opts.inMemory ? undefined : (opts.dataDir ?? mkdtempSync(join(tmpdir(), 'local-kafka-')))
  const args = [CLI, '--port', String(opts.port ?? 0)]
  if (dataDir === undefined) args.push('--in-memory')
  else args.push('--data-dir', dataDir)
  if (opts.partitions !== undefined) args.push('--partitions', String(opts.partitions))
  args.push('--initial-rebalance-delay-ms', String(opts.initialRebalanceDelayMs ?? 0))
  args.push('--log-level', opts.logLevel ?? 'warn')
  if (opts.retentionMs !== undefined) args.push('--retention-ms', String(opts.retentionMs))
  if (opts.retentionBytes !== undefined) args.push('--retention-bytes', String(opts.retentionBytes))
  if (opts.segmentBytes !== undefined) args.push('--segment-bytes', String(opts.segmentBytes))
  if (opts.retentionCheckMs !== undefined) args.push('--retention-check-ms', String(opts.retentionCheckMs))
  if (opts.fsync) args.push('--fsync')
  if (opts.advertisedPort !== undefined) args.push('--advertised-port', String(opts.advertisedPort))
  if (opts.tls !== undefined) {
    args.push('--tls-cert', opts.tls.certFile, '--tls-key', opts.tls.keyFile)
    if (opts.tls.clientCaFile !== undefined) args.push('--tls-client-ca', opts.tls.clientCaFile)
  }
  let usersDir: string | undefined
  if (opts.sasl !== undefined) {
    if (opts.sasl.usersFile !== undefined) args.push('--sasl-users-file', opts.sasl.usersFile)
    if (opts.sasl.users !== undefined) {
      if (opts.sasl.usersFile !== undefined) throw new Error('give sasl.users or sasl.usersFile, not both')
      usersDir = mkdtempSync(join(tmpdir(), 'local-kafka-users-'))
      const file = join(usersDir, 'users')
      const lines = Object.entries(opts.sasl.users).map(([name, password]) => `${name}:${password}\n`)
      writeFileSync(file, lines.join(''), { mode: 0o600 })
      args.push('--sasl-users-file', file)
    }
    if (opts.sasl.mechanisms !== undefined) args.push('--sasl-mechanisms', opts.sasl.mechanisms.join(','))
  }
  // The broker exits when this process dies (its stdin closes), even if stop() is never called.
  args.push('--exit-with-parent')

  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  // The stdin pipe is only a lifeline; it must not keep this process alive.
  ;(child.stdin as unknown as { unref?: () => void }).unref?.()
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8192)
    opts.onStderr?.(chunk)
  })
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      // The broker has read its users file at start; it holds passwords, so it goes with the process.
      if (usersDir !== undefined) rmSync(usersDir, { recursive: true, force: true })
      resolve(code)
    }),
  )

  const port = await new Promise<number>((resolve, reject) => {
    let stdout = ''
    const timeoutMs = opts.startTimeoutMs ?? 20_000
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`local-kafka did not start within ${timeoutMs} ms; stderr:\n${stderr}`))
    }, timeoutMs)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk
      const m = LISTENING.exec(stdout)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`local-kafka exited before listening (code ${code}, signal ${signal}); stderr:\n${stderr}`))
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
  const pid = child.pid!
  return {
    brokers: `127.0.0.1:${port}`,
    port,
    pid,
    dataDir,
    exited,
    kill: (signal) => {
      child.kill(signal)
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
      await exited
      clearTimeout(timer)
    },
  }
}
