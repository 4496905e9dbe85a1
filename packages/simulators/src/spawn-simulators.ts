import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export type SimulatorName = 'segment' | 'braze' | 'heap' | 'mparticle'

export interface SpawnedSimulators {
  urls: Partial<Record<SimulatorName, string>>
  pid: number
  /** SIGTERM, then SIGKILL if the process has not exited within 5 s. */
  stop(): Promise<void>
}

// Resolves next to this module whether it runs from src (type stripping) or from the compiled dist.
const cliPath = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './cli.ts' : './cli.js', import.meta.url))

/** Runs the simulators CLI as a child process (as `npm start` and end-to-end tests do) and reads back the URLs. */
export function spawnSimulators(
  args: string[] = [],
  options: { startTimeoutMs?: number } = {},
): Promise<SpawnedSimulators> {
  const child = spawn(process.execPath, ['--conditions=@lookstream/source', cliPath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000)
  })
  return new Promise((resolve, reject) => {
    const urls: SpawnedSimulators['urls'] = {}
    const timer = setTimeout(() => {
      void stop()
      reject(new Error(`simulators did not start within ${options.startTimeoutMs ?? 30_000} ms: ${stderr}`))
    }, options.startTimeoutMs ?? 30_000)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`simulators exited before they were ready (code ${code}, signal ${signal}): ${stderr}`))
    })
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^(segment|braze|heap|mparticle) simulator listening on (\S+)$/.exec(line)
      if (match !== null) urls[match[1] as SimulatorName] = match[2]
      if (line === 'simulators ready') {
        clearTimeout(timer)
        resolve({ urls, pid: child.pid as number, stop })
      }
    })
  })
}
