import { parseArgs } from 'node:util'
import { startBrazeSimulator } from './braze-simulator.ts'
import { startHeapSimulator } from './heap-simulator.ts'
import { startMparticleSimulator } from './mparticle-simulator.ts'
import { startSegmentSimulator } from './segment-simulator.ts'
import { type Simulator } from './simulator-server.ts'

const usage = `Usage: simulators [--segment-port N] [--braze-port N] [--heap-port N] [--mparticle-port N] [options]

Starts the given simulators on 127.0.0.1 (port 0 picks a free port); with no --*-port flag, all four on free ports.
Prints "<name> simulator listening on <url>" per simulator, then "simulators ready". Stops on SIGTERM/SIGINT.

Options:
  --host ADDRESS            address to listen on, default 127.0.0.1 (0.0.0.0 in a container)
  --segment-write-key KEY   (repeatable) default segment-write-key
  --braze-api-key KEY       (repeatable) default braze-api-key
  --heap-app-id ID          (repeatable) default 1234567890
  --mparticle-key KEY       default mparticle-key
  --mparticle-secret SECRET default mparticle-secret
  --max-items N             item bodies kept per list (counts and ids are always kept), default 10000
  --max-requests N          request-log entries kept, default 10000
  --no-rate-limits          disable every simulated rate limit (benchmarks); enable them later via /__admin/rate-limits
  --fault-seed N            seed for rate-based faults`

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`)
  return n
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      'segment-port': { type: 'string' },
      'braze-port': { type: 'string' },
      'heap-port': { type: 'string' },
      'mparticle-port': { type: 'string' },
      'segment-write-key': { type: 'string', multiple: true },
      'braze-api-key': { type: 'string', multiple: true },
      'heap-app-id': { type: 'string', multiple: true },
      'mparticle-key': { type: 'string' },
      'mparticle-secret': { type: 'string' },
      'max-items': { type: 'string' },
      'max-requests': { type: 'string' },
      'no-rate-limits': { type: 'boolean', default: false },
      'fault-seed': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) {
    console.log(usage)
    return
  }
  const ports = {
    segment: integer('segment-port', values['segment-port']),
    braze: integer('braze-port', values['braze-port']),
    heap: integer('heap-port', values['heap-port']),
    mparticle: integer('mparticle-port', values['mparticle-port']),
  }
  const all = Object.values(ports).every((port) => port === undefined)
  const host = values.host
  if (host !== undefined && !/^[\w.:-]+$/.test(host)) throw new Error('--host must be an IP address or host name')
  const common = {
    ...(host === undefined ? {} : { host }),
    maxItems: integer('max-items', values['max-items']),
    maxRequests: integer('max-requests', values['max-requests']),
    faults: values['fault-seed'] === undefined ? {} : { seed: integer('fault-seed', values['fault-seed']) as number },
  }
  const noLimits = values['no-rate-limits']
  const off = noLimits ? null : undefined

  const starts: (() => Promise<Simulator>)[] = []
  if (all || ports.segment !== undefined) {
    starts.push(() =>
      startSegmentSimulator({
        ...common,
        port: ports.segment ?? 0,
        writeKeys: values['segment-write-key'],
        rateLimit: off,
      }),
    )
  }
  if (all || ports.braze !== undefined) {
    starts.push(() =>
      startBrazeSimulator({
        ...common,
        port: ports.braze ?? 0,
        apiKeys: values['braze-api-key'],
        rateLimit: off,
        bulkRateLimit: off,
      }),
    )
  }
  if (all || ports.heap !== undefined) {
    const rateLimits = noLimits ? { identityRequests: null, identityEvents: null, appEvents: null } : undefined
    starts.push(() =>
      startHeapSimulator({ ...common, port: ports.heap ?? 0, appIds: values['heap-app-id'], rateLimits }),
    )
  }
  if (all || ports.mparticle !== undefined) {
    const key = values['mparticle-key']
    const secret = values['mparticle-secret']
    const credentials =
      key !== undefined || secret !== undefined
        ? [{ key: key ?? 'mparticle-key', secret: secret ?? 'mparticle-secret' }]
        : undefined
    starts.push(() => startMparticleSimulator({ ...common, port: ports.mparticle ?? 0, credentials, rateLimit: off }))
  }

  const simulators: Simulator[] = []
  let closing = false
  const shutdown = (): void => {
    if (closing) return
    closing = true
    Promise.all(simulators.map((simulator) => simulator.close())).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  if (process.env.LOOKSTREAM_EXIT_WITH_PARENT === '1') {
    // The spawner keeps our stdin open: end-of-file means it died, so stop instead of staying an orphan.
    process.stdin.once('end', shutdown)
    process.stdin.once('error', shutdown)
    process.stdin.resume()
  }

  for (const start of starts) {
    const simulator = await start()
    simulators.push(simulator)
    console.log(`${simulator.name} simulator listening on ${simulator.url}`)
  }
  console.log('simulators ready')
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  console.error(usage)
  process.exit(1)
})
