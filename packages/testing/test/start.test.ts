import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, inject, it, onTestFinished } from 'vitest'
import { freePort, isAlive, readObjectText, startManagedProcess, waitFor, type ManagedProcess } from '../src/index.ts'

// `npm start` is `node --conditions=@lookstream/source scripts/start.ts` under the project's Node, and
// `npm run sample` the same with scripts/send-sample-look.ts.
const root = new URL('../../../', import.meta.url).pathname
const script = join(root, 'scripts/start.ts')
const sampleScript = join(root, 'scripts/send-sample-look.ts')

async function startPipeline(env: Record<string, string>): Promise<ManagedProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'lookstream-start-'))
  onTestFinished(() => rm(dataDir, { recursive: true, force: true }))
  const proc = await startManagedProcess({
    name: 'npm start',
    command: process.execPath,
    args: ['--conditions=@lookstream/source', script],
    cwd: root,
    // Free ports for everything started, so the test never collides with a running `npm start`.
    // Data directories of its own too, so the test never reads nor leaves data in .data/.
    env: {
      PATH: process.env.PATH,
      LOOKSTREAM_START_PORTS: 'ephemeral',
      LOCAL_KAFKA_DATA_DIR: join(dataDir, 'kafka'),
      LOCAL_REDIS_DATA_DIR: join(dataDir, 'redis'),
      LOCAL_S3_DATA_DIR: join(dataDir, 's3'),
      // The secrets npm start would otherwise generate once and keep in .data/.
      ACTION_HUB_SECRET: randomBytes(32).toString('hex'),
      VIEWER_TOKEN: randomBytes(32).toString('hex'),
      SEND_HISTORY_SECRET: randomBytes(32).toString('hex'),
      ...env,
    },
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

/** The address each component's line shows (`<name>  http://127.0.0.1:<port>  (…)`), by component name. */
function componentAddresses(proc: ManagedProcess): Record<string, string> {
  const addresses: Record<string, string> = {}
  for (const line of proc.lines()) {
    const match = /^(\S+)\s+(http:\/\/127\.0\.0\.1:\d+)\s+\(/.exec(line)
    if (match) addresses[match[1] as string] = match[2] as string
  }
  return addresses
}

/** Runs `npm run sample -- --destination <name>` to its end: its exit code and its output (stdout, then stderr). */
async function runSample(destination: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@lookstream/source', sampleScript, '--destination', destination],
    {
      cwd: root,
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  // The sample gives up by itself after 60 s; a test that fails earlier stops it.
  onTestFinished(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code: code ?? -1, output: stdout + stderr }
}

describe('npm start (scripts/start.ts)', () => {
  it('starts local-kafka, redis-server, s3rver, the four simulators, ingress and every destination service, prints their addresses, the Action Hub URL and token, delivers `npm run sample` to every destination, and on SIGTERM stops them all and exits 0', async () => {
    // One Looker stand-in port per destination: the samples run side by side.
    const destinations = ['segment', 'braze', 'heap', 'mparticle', 'recurly-engage'] as const
    const lookerPorts = await Promise.all(destinations.map(() => freePort()))
    const secret = randomBytes(32).toString('hex')
    const proc = await startPipeline({
      ACTION_HUB_SECRET: secret,
      LOOKER_HOSTS: lookerPorts.map((port) => `http://127.0.0.1:${port}`).join(','),
    })
    const lines = proc.lines()
    expect(lines).toContainEqual(expect.stringMatching(/^kafka\s+127\.0\.0\.1:\d+\s+\(local-kafka, pid \d+, data in /))
    // redis-server persists like a production Redis: an append-only file in LOCAL_REDIS_DATA_DIR.
    const redisLine = /^redis\s+redis:\/\/127\.0\.0\.1:\d+\s+\(redis-server, pid \d+, data in (\/\S+\/redis)\)$/
    const redisDir = lines.map((l) => redisLine.exec(l)?.[1]).find((d) => d !== undefined)
    expect(redisDir, lines.join('\n')).toBeDefined()
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
    expect(lines).toContain('  npm run sample -- --destination braze')

    // Each sample: 25 rows sent the way that destination's action expects, followed to the last one delivered, then
    // what the destination received. Heap's pace (15,000 items a minute, one request ahead) sends 25 rows at once.
    const addresses = componentAddresses(proc)
    const samples = await Promise.all(
      destinations.map((destination, i) =>
        runSample(destination, {
          INGRESS_URL: addresses.ingress!,
          SEGMENT_SIMULATOR_URL: addresses['segment-simulator']!,
          BRAZE_SIMULATOR_URL: addresses['braze-simulator']!,
          HEAP_SIMULATOR_URL: addresses['heap-simulator']!,
          MPARTICLE_SIMULATOR_URL: addresses['mparticle-simulator']!,
          S3_URL: addresses.s3!,
          ACTION_HUB_SECRET: secret,
          SAMPLE_LOOKER_PORT: String(lookerPorts[i]),
        }),
      ),
    )
    const received = {
      segment: 'The last event as Segment received it:\n',
      braze: 'The last attributes object as Braze received it:\n',
      heap: 'The last user as Heap received it:\n',
      mparticle: 'The last batch as mParticle received it:\n',
      'recurly-engage': 'Its first lines:\nuser_id,Users Email,Users Plan,Orders Count\n',
    }
    destinations.forEach((destination, i) => {
      const { code, output } = samples[i]!
      expect({ destination, code }, output).toEqual({ destination, code: 0 })
      expect(output).toContain(`The ${destination} service delivered 25/25 rows\n`)
      expect(output).toContain(received[destination])
    })

    proc.kill('SIGTERM')
    expect(await proc.exited, proc.lines().join('\n')).toEqual({ code: 0, signal: null })
    expect(proc.lines().at(-1)).toBe('lookstream stopped')
    for (const pid of Object.values(pids)) expect(isAlive(pid)).toBe(false)
    expect(readdirSync(join(redisDir!, 'appendonlydir')).some((f) => f.endsWith('.aof'))).toBe(true)
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

  it('runs a Looker execute of recurly_engage, a Look with a user_id tag and one without: one byte-exact CSV per send in its local S3', async () => {
    // Each note and its RFC 4180 cell, written out by hand; a null note is an empty cell.
    const notes: [note: string | null, cell: string][] = [
      ['a, "quoted" note', '"a, ""quoted"" note"'],
      ['two\nlines', '"two\nlines"'],
      ['crlf\r\nlines', '"crlf\r\nlines"'],
      ['Zoë 中文 😀', 'Zoë 中文 😀'],
      ['', ''],
      [null, ''],
    ]
    const rows = 60
    const prefix = `s${randomUUID().slice(0, 6)}`
    const look = (tagged: boolean) =>
      JSON.stringify({
        ran_at: new Date().toISOString(),
        fields: {
          dimensions: [
            { name: 'users.email', label: 'Users Email', tags: [] },
            { name: 'users.id', label: 'Users ID', tags: tagged ? ['user_id'] : [] },
            { name: 'users.note', label: 'Users Note', tags: [] },
          ],
          measures: [{ name: 'orders.ltv', label: 'Orders LTV', tags: [] }],
        },
        data: Array.from({ length: rows }, (_, i) => ({
          'users.email': { value: `${prefix}-${i}@example.com` },
          'users.id': { value: `${prefix}-${i}` },
          'users.note': { value: notes[i % notes.length]![0] },
          'orders.ltv': { value: i * 1.5 },
        })),
      })
    const looks: Record<string, string> = { '/download/tagged': look(true), '/download/untagged': look(false) }
    const looker = createServer((req, res) => {
      const body = looks[req.url ?? '']
      if (body === undefined) return void res.writeHead(404).end()
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
    })
    await new Promise<void>((resolve) => looker.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => void looker.close())
    const lookerUrl = `http://127.0.0.1:${(looker.address() as AddressInfo).port}`

    const proc = await startPipeline({
      LOOKSTREAM_COMPONENTS: 'kafka,redis,s3,ingress,recurly-engage',
      LOOKER_HOSTS: lookerUrl,
    })
    const lines = proc.lines()
    const ingress = /^ingress\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(lines.find((l) => l.startsWith('ingress')) ?? '')?.[1]
    const s3 = /^s3\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(lines.find((l) => l.startsWith('s3 ')) ?? '')?.[1]
    const token = /^Action Hub token: (\S+)$/.exec(lines.find((l) => l.startsWith('Action Hub token:')) ?? '')?.[1]
    expect(ingress).toBeDefined()
    expect(s3).toBeDefined()
    expect(token).toBeDefined()
    const auth = { authorization: `Token token="${token}"` }

    async function execute(path: string, planId: number): Promise<string> {
      const res = await fetch(`${ingress}/actions/recurly_engage/execute`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', 'user-agent': 'LookerOutgoingWebhook/24.0.0' },
        body: JSON.stringify({
          type: 'query',
          scheduled_plan: {
            scheduled_plan_id: planId,
            title: 'npm start test',
            type: 'Look',
            download_url: `${lookerUrl}${path}`,
          },
          data: {},
          form_params: { connection: 'default' },
        }),
      })
      const answer = JSON.parse((await res.text()).trim()) as { looker: { success: boolean; send_id?: string } }
      expect(answer.looker.success).toBe(true)
      return answer.looker.send_id!
    }

    async function fileOf(sendId: string): Promise<{ text: string; accepted: number }> {
      const send = await waitFor(
        async () => {
          const res = await fetch(`${ingress}/sends/${sendId}`, { headers: auth })
          const record = (await res.json()) as Record<string, unknown>
          return typeof record.file === 'string' || typeof record.fileError === 'string' ? record : undefined
        },
        { timeoutMs: 60_000, message: 'the send record names its file' },
      )
      expect(send.fileError).toBeUndefined()
      const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(String(send.file))!
      expect(key).toMatch(/^ingest\/traits_\d{8}T\d{6}Z(_[0-9a-f-]{8})?\.csv$/)
      return { text: await readObjectText(s3!, bucket!, key!), accepted: Number(send.accepted) }
    }

    // The file holds the header, then every row once in the order of the partitions it came through: every
    // expected record occurs, and together with the header they make up the whole file.
    function expectCsv(text: string, header: string, record: (i: number) => string): void {
      expect(text.startsWith(header)).toBe(true)
      let length = header.length
      for (let i = 0; i < rows; i++) {
        expect(text).toContain(record(i))
        length += record(i).length
      }
      expect(text.length).toBe(length)
    }

    const tagged = await fileOf(await execute('/download/tagged', 7101))
    expect(tagged.accepted).toBe(rows)
    expectCsv(
      tagged.text,
      'user_id,Users Email,Users Note,Orders LTV\r\n',
      (i) => `${prefix}-${i},${prefix}-${i}@example.com,${notes[i % notes.length]![1]},${i * 1.5}\r\n`,
    )
    const untagged = await fileOf(await execute('/download/untagged', 7102))
    expect(untagged.accepted).toBe(rows)
    expectCsv(
      untagged.text,
      'user_id,Users ID,Users Note,Orders LTV\r\n',
      (i) => `${prefix}-${i}@example.com,${prefix}-${i},${notes[i % notes.length]![1]},${i * 1.5}\r\n`,
    )
    proc.kill('SIGTERM')
    expect(await proc.exited, proc.lines().join('\n')).toEqual({ code: 0, signal: null })
  }, 300_000)
})
