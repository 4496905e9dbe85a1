import { spawn, type ChildProcess } from 'node:child_process'
import { trackPid } from './child-registry.ts'

export interface ProcessExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ManagedProcessOptions {
  /** Shown in errors. */
  name: string
  command: string
  args?: readonly string[]
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Resolves start() once a line of stdout or stderr matches. */
  readyLine?: RegExp
  /** Or once this returns true (polled). */
  readyCheck?: () => Promise<boolean>
  readyTimeoutMs?: number
  /** Lines of output kept for error messages and tests. */
  keepLines?: number
  /** Called with every line of stdout and stderr. */
  onLine?: (line: string) => void
}

export interface ManagedProcess {
  name: string
  pid: number
  child: ChildProcess
  /** The line that matched readyLine, if one was given. */
  readyMatch: RegExpExecArray | undefined
  /** Output lines seen so far (stdout and stderr, most recent last). */
  lines(): string[]
  exited: Promise<ProcessExit>
  hasExited(): boolean
  /** Sends `signal`, waits up to graceMs for the exit, then SIGKILLs. Resolves with the exit. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ProcessExit>
  kill(signal?: NodeJS.Signals): void
}

export class ProcessStartError extends Error {
  readonly code = 'LS_TESTING_START_FAILED'
}

function describeExit(exit: ProcessExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`
}

/** Spawns a process in the same process group, tracks its PID, and waits until it is ready. */
export async function startManagedProcess(options: ManagedProcessOptions): Promise<ManagedProcess> {
  const { name, readyLine, readyCheck, readyTimeoutMs = 30_000, keepLines = 200 } = options
  const child = spawn(options.command, options.args ?? [], {
    env: options.env ?? process.env,
    cwd: options.cwd,
    // stdin stays an open pipe: when this process dies the child reads EOF, and children that honour
    // LOOKSTREAM_EXIT_WITH_PARENT (every lookstream service, the simulators, local-kafka) stop by themselves.
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new ProcessStartError(
          err.code === 'ENOENT' ? `${name}: ${options.command} not found on PATH` : `${name}: ${err.message}`,
          { cause: err },
        ),
      ),
    )
  })
  await spawned
  const pid = child.pid as number
  const untrack = trackPid(pid)

  let exit: ProcessExit | undefined
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal }
      untrack()
      resolve(exit)
    })
  })

  const kept: string[] = []
  let readyMatch: RegExpExecArray | undefined
  let onReadyLine: (() => void) | undefined
  for (const stream of [child.stdout, child.stderr]) {
    let pending = ''
    stream?.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk
      const parts = pending.split('\n')
      pending = parts.pop() ?? ''
      for (const line of parts) {
        kept.push(line)
        if (kept.length > keepLines) kept.shift()
        options.onLine?.(line)
        if (readyLine && !readyMatch) {
          const match = readyLine.exec(line)
          if (match) {
            readyMatch = match
            onReadyLine?.()
          }
        }
      }
    })
  }

  const managed: ManagedProcess = {
    name,
    pid,
    child,
    get readyMatch() {
      return readyMatch
    },
    lines: () => [...kept],
    exited,
    hasExited: () => exit !== undefined,
    kill(signal = 'SIGTERM') {
      if (exit === undefined) child.kill(signal)
    },
    async stop(signal = 'SIGTERM', graceMs = 5_000) {
      if (exit !== undefined) return exit
      child.kill(signal)
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), graceMs)
      })
      const first = await Promise.race([exited, late])
      clearTimeout(timer)
      if (first !== 'late') return first
      child.kill('SIGKILL')
      return exited
    },
  }

  if (!readyLine && !readyCheck) return managed

  const ready = new Promise<void>((resolve, reject) => {
    let done = false
    const finish = (err?: Error): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err) reject(err)
      else resolve()
    }
    const tail = (): string => kept.slice(-20).join('\n')
    const timer = setTimeout(
      () => finish(new ProcessStartError(`${name} was not ready within ${readyTimeoutMs} ms; output:\n${tail()}`)),
      readyTimeoutMs,
    )
    void exited.then((e) =>
      finish(new ProcessStartError(`${name} ${describeExit(e)} before it was ready; output:\n${tail()}`)),
    )
    if (readyLine) {
      if (readyMatch) finish()
      onReadyLine = () => finish()
    }
    if (readyCheck) {
      const poll = async (): Promise<void> => {
        while (!done) {
          if (await readyCheck().catch(() => false)) return finish()
          await new Promise((r) => setTimeout(r, 50))
        }
      }
      void poll()
    }
  })
  try {
    await ready
  } catch (err) {
    await managed.stop('SIGKILL', 1_000)
    throw err
  }
  return managed
}
