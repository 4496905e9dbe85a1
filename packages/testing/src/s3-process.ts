import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startManagedProcess, type ManagedProcess } from './managed-process.ts'

export interface S3Options {
  /** Where objects are stored; a temporary directory (removed on stop) when omitted. */
  directory?: string
  /** The 127.0.0.1 port to listen on; a free one when omitted or 0. */
  port?: number
}

export interface S3Process {
  endpoint: string
  port: number
  pid: number
  directory: string
  process: ManagedProcess
  stop(): Promise<void>
}

const entry = new URL('./s3-server-main.ts', import.meta.url).pathname

/** Starts s3rver in a child process on 127.0.0.1 (a free port by default). Use s3Client(endpoint) to talk to it. */
export async function startS3(options: S3Options = {}): Promise<S3Process> {
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 'lookstream-s3-')))
  const owned = options.directory === undefined
  try {
    const proc = await startManagedProcess({
      name: 's3rver',
      command: process.execPath,
      // s3rver's ListObjectsV2 continuation tokens are DES-encrypted, a cipher OpenSSL 3 keeps in its legacy
      // provider: without it every listing longer than one page (1000 keys) answers 500 InternalError.
      args: [
        '--openssl-legacy-provider',
        '--conditions=@lookstream/source',
        entry,
        directory,
        String(options.port ?? 0),
      ],
      readyLine: /^s3rver listening on (http:\/\/127\.0\.0\.1:(\d+))$/,
      readyTimeoutMs: 30_000,
    })
    const match = proc.readyMatch as RegExpExecArray
    return {
      endpoint: match[1] as string,
      port: Number(match[2]),
      pid: proc.pid,
      directory,
      process: proc,
      async stop() {
        await proc.stop('SIGTERM', 5_000)
        if (owned) await rm(directory, { recursive: true, force: true })
      },
    }
  } catch (err) {
    if (owned) await rm(directory, { recursive: true, force: true })
    throw err
  }
}
