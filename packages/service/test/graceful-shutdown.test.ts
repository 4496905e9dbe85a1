import { spawn, type ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { connect } from 'node:net'
import { describe, expect, it, onTestFinished, vi } from 'vitest'

const fixture = new URL('./fixtures/slow-service.ts', import.meta.url).pathname

interface Running {
  child: ChildProcess
  logs: Record<string, unknown>[]
  stderr: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

function start(env: Record<string, string>): Running {
  const child = spawn(process.execPath, ['--conditions=@lookstream/source', fixture], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const logs: Record<string, unknown>[] = []
  let pending = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>)
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  )
  return { child, logs, stderr: () => stderr, exited }
}

async function listeningPort(running: Running): Promise<number> {
  const line = await vi.waitFor(
    () => {
      const found = running.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
      if (!found) throw new Error(`service did not log its address; stderr: ${running.stderr()}`)
      return found
    },
    { timeout: 20_000, interval: 50 },
  )
  return Number(/:(\d+)$/.exec(String(line.msg))?.[1])
}

function logged(running: Running, msg: string): Promise<Record<string, unknown>> {
  return vi.waitFor(
    () => {
      const found = running.logs.find((l) => l.msg === msg)
      if (!found) throw new Error(`no "${msg}" log line yet`)
      return found
    },
    { timeout: 20_000, interval: 20 },
  )
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject).end()
  })
}

function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve('connected')
    })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
}

describe('graceful shutdown of a service process', () => {
  it('on SIGTERM finishes the in-flight request, refuses new connections, runs onClose hooks and exits 0', async () => {
    const running = start({ SHUTDOWN_TIMEOUT_MS: '10000' })
    const port = await listeningPort(running)

    let finished = false
    const inFlight = get(port, '/slow?ms=3000').finally(() => (finished = true))
    await logged(running, 'slow request started')

    const signalledAt = performance.now()
    running.child.kill('SIGTERM')
    await logged(running, 'shutting down')
    await vi.waitFor(
      async () => {
        expect(await connectOutcome(port)).toBe('ECONNREFUSED')
      },
      { timeout: 5_000, interval: 20 },
    )
    expect(finished).toBe(false)

    const response = await inFlight
    expect(response).toEqual({ status: 200, body: '{"done":true}' })
    const exit = await running.exited
    expect(exit).toMatchObject({ code: 0, signal: null })
    expect(exit.at - signalledAt).toBeLessThan(10_000)
    const messages = running.logs.map((l) => l.msg)
    expect(messages.indexOf('onClose hook ran')).toBeGreaterThan(messages.indexOf('shutting down'))
    expect(messages.at(-1)).toBe('shut down')
  })

  it('exits 1 when the shutdown outlasts SHUTDOWN_TIMEOUT_MS', async () => {
    const running = start({ SHUTDOWN_TIMEOUT_MS: '500' })
    const port = await listeningPort(running)
    get(port, '/slow?ms=30000').catch(() => undefined)
    await logged(running, 'slow request started')

    const signalledAt = performance.now()
    running.child.kill('SIGTERM')
    const exit = await running.exited
    expect(exit.code).toBe(1)
    expect(exit.at - signalledAt).toBeGreaterThanOrEqual(450)
    expect(exit.at - signalledAt).toBeLessThan(10_000)
    expect(running.logs.map((l) => l.msg)).toContain('shutdown did not finish in time: exiting 1')
  })

  it('exits 1 at once on a second signal', async () => {
    const running = start({ SHUTDOWN_TIMEOUT_MS: '60000' })
    const port = await listeningPort(running)
    get(port, '/slow?ms=30000').catch(() => undefined)
    await logged(running, 'slow request started')

    running.child.kill('SIGTERM')
    await logged(running, 'shutting down')
    running.child.kill('SIGINT')
    const exit = await running.exited
    expect(exit.code).toBe(1)
    expect(running.logs.map((l) => l.msg)).toContain('second signal while shutting down: exiting 1')
  })

  it('exits 1 with every config problem on stderr before listening', async () => {
    const running = start({ PORT: 'eighty', LOG_LEVEL: 'loud' })
    const exit = await running.exited
    expect(exit.code).toBe(1)
    expect(running.stderr()).toContain('LS_CONFIG_INVALID: invalid configuration: 2 settings to fix')
    expect(running.stderr()).toContain('PORT: expected an integer between 0 and 65535, got "eighty"')
    expect(running.logs.some((l) => String(l.msg).startsWith('Server listening'))).toBe(false)
  })
})
