// `npm start`: the whole pipeline on this machine. Starts every component in the table below in
// order, prints one line per component with its address and then a ready line, and on Ctrl-C or
// SIGTERM stops them in reverse order by PID and exits 0. If a component dies, it stops the rest and
// exits 1 with the reason.
//
// Environment:
//   KAFKA_BROKERS, REDIS_URL   use that external Kafka / Redis instead of starting one; the services also
//                              get every KAFKA_* and REDIS_* security setting set here (docs/operations.md)
//   LOCAL_KAFKA_PORT           port of the local-kafka started here (default 9092)
//   LOCAL_KAFKA_DATA_DIR       its data directory (default .data/kafka)
//   LOCAL_REDIS_PORT           port of the redis-server started here (default 6379)
//   LOCAL_REDIS_DATA_DIR       its data directory, append-only file fsynced every second (default .data/redis)
//   LOCAL_S3_PORT              port of the s3rver started here (default 4569)
//   LOCAL_S3_DATA_DIR          its data directory (default .data/s3)
//   LOOKSTREAM_START_PORTS=ephemeral
//                              every component started here takes a free port instead of its default
//                              (tests, or a second copy beside a running one)
//   LOOKSTREAM_COMPONENTS      comma-separated names to start (e.g. kafka,redis); default: all
//   RECURLY_ENGAGE_S3_BUCKET   the recurly-engage service writes to that bucket (with the other
//                              RECURLY_ENGAGE_S3_* variables) instead of a local S3 (s3rver, data in .data/s3)
//   each service line of the component table (scripts/components.ts) names its own port variable
//   (e.g. INGRESS_PORT)
// Imported by path, like the other scripts: they are linted as loose files, outside any tsconfig
// project, where a bare workspace import would resolve to (possibly unbuilt) dist/ types.
import { components, printNextSteps, withoutCredentials, type Context, type Running } from './components.ts'
import { join } from 'node:path'

async function main(): Promise<void> {
  const ctx: Context = {
    root: join(import.meta.dirname, '..'),
    env: process.env,
    ephemeral: process.env.LOOKSTREAM_START_PORTS === 'ephemeral',
    addresses: {},
  }
  const running: { name: string; component: Running }[] = []
  let stopping = false
  const width = Math.max(...components.map((c) => c.name.length))

  const stopAll = async (): Promise<void> => {
    for (const { name, component } of running.slice().reverse()) {
      try {
        await component.stop()
      } catch (err) {
        console.error(`${name}: ${(err as Error).message}`)
      }
    }
  }

  const shutdown = (code: number, why: string): void => {
    if (stopping) return
    stopping = true
    console.log(why)
    void stopAll().then(() => {
      console.log('lookstream stopped')
      process.exit(code)
    })
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) {
        // A second Ctrl-C: do not wait for graceful stops. The exit handler kills what is left.
        console.error(`second ${signal}: killing everything`)
        process.exit(1)
      }
      shutdown(0, `${signal}: stopping ${running.length} component${running.length === 1 ? '' : 's'}`)
    })
  }

  // A wrapper that dies without passing its signal on (a shell between npm and this script) would
  // leave everything running as orphans: stop when the parent goes away. The timer is not unref'd on
  // purpose: with only external components nothing else keeps this process alive until a signal.
  const parent = process.ppid
  setInterval(() => {
    if (process.ppid !== parent) shutdown(0, 'parent process exited: stopping')
  }, 1_000)

  const only = process.env.LOOKSTREAM_COMPONENTS?.split(',').map((name) => name.trim())
  const unknown = only?.filter((name) => !components.some((c) => c.name === name)) ?? []
  if (unknown.length > 0) {
    console.error(`LOOKSTREAM_COMPONENTS names unknown components: ${unknown.join(', ')}`)
    process.exit(1)
  }
  for (const component of components) {
    if (stopping) return
    if (only && !only.includes(component.name)) continue
    const skipped = component.skip?.(ctx)
    if (skipped !== undefined) {
      console.log(`${component.name.padEnd(width)}  skipped: ${skipped}`)
      continue
    }
    let started: Running
    try {
      started = await component.start(ctx)
    } catch (err) {
      shutdown(1, `${component.name} did not start: ${(err as Error).message}`)
      return
    }
    running.push({ name: component.name, component: started })
    ctx.addresses[component.name] = started.address
    console.log(`${component.name.padEnd(width)}  ${withoutCredentials(started.address)}  (${started.detail})`)
    void started.exited.then((reason) => shutdown(1, `${component.name} stopped unexpectedly: ${reason}`))
  }
  if (stopping) return
  printNextSteps(ctx)
  console.log(`lookstream ready: ${running.length} components running; Ctrl-C stops them`)
}

await main()
