import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { spawnSimulators } from '../src/index.ts'
import { basic, bearer, call } from './http.ts'

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url))

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('simulators CLI', () => {
  it('prints one URL per simulator, serves requests and stops on SIGTERM to its PID', async () => {
    const child = spawn(
      process.execPath,
      ['--conditions=@lookstream/source', cli, '--segment-port', '0', '--braze-port', '0'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    const pid = child.pid as number
    const exited = once(child, 'exit')
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    const urls = new Map<string, string>()
    const lines = createInterface({ input: child.stdout })
    for await (const line of lines) {
      const match = /^(\w+) simulator listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line)
      if (match !== null) urls.set(match[1] as string, match[2] as string)
      if (line === 'simulators ready') break
    }
    expect([...urls.keys()]).toEqual(['segment', 'braze'])

    const res = await call('POST', `${urls.get('segment')}/v1/batch`, {
      headers: basic('segment-write-key'),
      body: { batch: [{ type: 'identify', userId: 'u', messageId: 'cli-1' }] },
    })
    expect(res.status).toBe(200)
    const accepted = await call<{ total: number }>('GET', `${urls.get('segment')}/__admin/accepted`)
    expect(accepted.body.total).toBe(1)

    process.kill(pid, 'SIGTERM')
    const [code] = (await exited) as [number | null]
    expect(code).toBe(0)
    expect(alive(pid)).toBe(false)
  })

  it('--host chooses the listen address (0.0.0.0 in a container) and refuses anything but an address or name', async () => {
    const run = (...args: string[]) =>
      spawn(process.execPath, ['--conditions=@lookstream/source', cli, '--segment-port', '0', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    const child = run('--host', '0.0.0.0')
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    let url: string | undefined
    for await (const line of createInterface({ input: child.stdout })) {
      url ??= /^segment simulator listening on (http:\/\/\S+)$/.exec(line)?.[1]
      if (line === 'simulators ready') break
    }
    expect(url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/)
    const port = new URL(url!).port
    const res = await call('GET', `http://127.0.0.1:${port}/metrics`)
    expect(res.status).toBe(200)
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    expect(((await exited) as [number | null])[0]).toBe(0)

    const bad = run('--host', 'a b;c')
    let stderr = ''
    bad.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const [code] = (await once(bad, 'exit')) as [number | null]
    expect(code).toBe(1)
    expect(stderr).toContain('--host must be an IP address or host name')
  })

  it('spawnSimulators starts all four with the given credentials and stop() ends the process', async () => {
    const spawned = await spawnSimulators(['--braze-api-key', 'cli-key', '--no-rate-limits'])
    onTestFinished(() => spawned.stop())
    expect(Object.keys(spawned.urls).sort()).toEqual(['braze', 'heap', 'mparticle', 'segment'])
    const res = await call('POST', `${spawned.urls.braze}/users/track`, {
      headers: bearer('cli-key'),
      body: { attributes: [{ external_id: 'u1', plan: 'annual' }] },
    })
    expect(res.status).toBe(201)
    const limits = await call('GET', `${spawned.urls.segment}/__admin/rate-limits`)
    expect(limits.body).toEqual({ requests: null })
    await spawned.stop()
    expect(alive(spawned.pid)).toBe(false)
  })
})
