import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, inject, it, onTestFinished } from 'vitest'
import { isAlive, startManagedProcess, waitFor, type ManagedProcess } from '../src/index.ts'

// `npm start` is `node --conditions=@lookstream/source scripts/start.ts` under the project's Node.
const root = new URL('../../../', import.meta.url).pathname
const script = join(root, 'scripts/start.ts')

async function startPipeline(env: Record<string, string>): Promise<ManagedProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'lookstream-start-'))
  onTestFinished(() => rm(dataDir, { recursive: true, force: true }))
  const proc = await startManagedProcess({
    name: 'npm start',
    command: process.execPath,
    args: ['--conditions=@lookstream/source', script],
    cwd: root,
    // Free ports for everything started, so the test never collides with a running `npm start`.
    env: { PATH: process.env.PATH, LOOKSTREAM_START_PORTS: 'ephemeral', LOCAL_KAFKA_DATA_DIR: dataDir, ...env },
    readyLine: /^lookstream ready: \d+ components running/,
    // Every service is compiled first (as its `pnpm start` does) and then started: minutes on a busy machine.
    readyTimeoutMs: 240_000,
  })
  onTestFinished(async () => {
    await proc.stop('SIGKILL', 1_000)
  })
  return proc
}

function componentPids(proc: ManagedProcess): Record<string, number> {
  const pids: Record<string, number> = {}
  for (const line of proc.lines()) {
    const match = /^(\S+)\s+\S+\s+\(.*\bpid (\d+)/.exec(line)
    if (match) pids[match[1] as string] = Number(match[2])
  }
  return pids
}

describe('npm start (scripts/start.ts)', () => {
  it('starts local-kafka, redis-server, the Segment, Braze and mParticle simulators, ingress, segment, braze and mparticle, prints their addresses, the Action Hub URL and token, and on SIGTERM stops them all and exits 0', async () => {
    const proc = await startPipeline({})
    const lines = proc.lines()
    expect(lines).toContainEqual(expect.stringMatching(/^kafka\s+127\.0\.0\.1:\d+\s+\(local-kafka, pid \d+, data in /))
    expect(lines).toContainEqual(
      expect.stringMatching(/^redis\s+redis:\/\/127\.0\.0\.1:\d+\s+\(redis-server, pid \d+, data in memory\)$/),
    )
    const pids = componentPids(proc)
    expect(Object.keys(pids).sort()).toEqual([
      'braze',
      'braze-simulator',
      'heap',
      'heap-simulator',
      'ingress',
      'kafka',
      'mparticle',
      'mparticle-simulator',
      'recurly-engage',
      'redis',
      's3',
      'segment',
      'segment-simulator',
    ])
    for (const pid of Object.values(pids)) expect(isAlive(pid)).toBe(true)
    const ingress = /^ingress\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(lines.find((l) => l.startsWith('ingress')) ?? '')?.[1]
    expect(lines).toContain(`Action Hub URL:   ${ingress}`)
    expect(lines).toContainEqual(expect.stringMatching(/^Action Hub token: [0-9a-f]{64}\/[0-9a-f]{128}$/))
    expect(lines).toContain('  npm run sample')

    proc.kill('SIGTERM')
    expect(await proc.exited, proc.lines().join('\n')).toEqual({ code: 0, signal: null })
    expect(proc.lines().at(-1)).toBe('lookstream stopped')
    for (const pid of Object.values(pids)) expect(isAlive(pid)).toBe(false)
  }, 300_000)

  it('when a component dies, stops the others and exits 1 with the reason', async () => {
    const proc = await startPipeline({ LOOKSTREAM_COMPONENTS: 'kafka,redis' })
    const pids = componentPids(proc)
    process.kill(pids.redis as number, 'SIGKILL')
    expect(await proc.exited).toEqual({ code: 1, signal: null })
    expect(proc.lines().join('\n')).toContain('redis stopped unexpectedly: redis-server was killed by SIGKILL')
    await waitFor(() => !isAlive(pids.kafka as number), { timeoutMs: 15_000, message: 'local-kafka gone' })
  })

  it('when npm start itself is killed with SIGKILL, the services and local-kafka it started stop by themselves', async () => {
    const proc = await startPipeline({})
    const pids = componentPids(proc)
    // redis-server never reads its stdin, so it cannot notice; it is stopped here by PID.
    onTestFinished(() => void (isAlive(pids.redis as number) && process.kill(pids.redis as number, 'SIGKILL')))
    proc.kill('SIGKILL')
    for (const [name, pid] of Object.entries(pids)) {
      if (name === 'redis') continue
      await waitFor(() => !isAlive(pid), { timeoutMs: 20_000, message: `${name} to stop` })
    }
  }, 300_000)

  it('with BRAZE_REST_ENDPOINT set, starts no Braze simulator and points the braze service at that endpoint', async () => {
    // Nothing is sent (no Look runs), so the endpoint only has to pass the service's configuration checks.
    const proc = await startPipeline({
      LOOKSTREAM_COMPONENTS: 'kafka,redis,braze-simulator,braze',
      BRAZE_REST_ENDPOINT: 'http://127.0.0.1:9',
      BRAZE_API_KEY: 'operator-braze-key',
      BRAZE_ALLOWED_HOSTS: '127.0.0.1:9',
    })
    expect(proc.lines()).toContainEqual(
      expect.stringMatching(/^braze-simulator\s+skipped: BRAZE_REST_ENDPOINT is set: the braze service calls it$/),
    )
    expect(Object.keys(componentPids(proc)).sort()).toEqual(['braze', 'kafka', 'redis'])
    expect(proc.lines().join('\n')).not.toContain('operator-braze-key')
    proc.kill('SIGTERM')
    expect(await proc.exited, proc.lines().join('\n')).toEqual({ code: 0, signal: null })
  }, 300_000)

  it('uses KAFKA_BROKERS and REDIS_URL from the environment instead of starting its own', async () => {
    const brokers = inject('kafkaBrokers')
    const redisUrl = inject('redisUrl')
    // Only the two: a segment service here would join lookstream.segment on the shared test broker.
    const proc = await startPipeline({
      KAFKA_BROKERS: brokers,
      REDIS_URL: redisUrl,
      LOOKSTREAM_COMPONENTS: 'kafka,redis',
    })
    expect(proc.lines()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^kafka\\s+${brokers}\\s+\\(external, from KAFKA_BROKERS\\)$`)),
        expect.stringMatching(new RegExp(`^redis\\s+${redisUrl}\\s+\\(external, from REDIS_URL\\)$`)),
      ]),
    )
    expect(componentPids(proc)).toEqual({})
    proc.kill('SIGTERM')
    expect(await proc.exited, proc.lines().join('\n')).toEqual({ code: 0, signal: null })
    expect(proc.lines().at(-1)).toBe('lookstream stopped')
  })
})
