// Every process the harness starts is registered here, so that an exiting or signalled test
// process takes them down with it instead of orphaning them (a redis-server outlives its parent).
const live = new Set<number>()
let installed = false

function killAll(): void {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  live.clear()
}

function onSignal(signal: NodeJS.Signals): void {
  killAll()
  // Keep the default meaning of the signal when nobody else handles it.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

function install(): void {
  if (installed) return
  installed = true
  process.on('exit', killAll)
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.once(signal, onSignal)
}

/** Registers a child PID to be killed if this process exits first; returns the unregister function. */
export function trackPid(pid: number): () => void {
  install()
  live.add(pid)
  return () => {
    live.delete(pid)
  }
}

export function trackedPids(): number[] {
  return [...live]
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
