// The ingress's own CPU per row by action, without Kafka or HTTP: runSend (reader, mapping, message ids,
// serialization, validation, headers) over the same rows for each action, with a producer that acknowledges at
// once and hashes every record (topic, key, value, headers), so two versions can also be compared byte for byte:
//   node --conditions=@lookstream/source bench/ingress/action-rows.ts [--rows 200000] [--rounds 3]
//        [--actions segment_identify,segment_track,braze,mparticle,mparticle_events] [--no-hash]
// CPU seconds are the process's (user + system) during each send; the lowest of --rounds sends is printed. Rows
// are those of bench/destinations/pipeline.ts (about the same size for every action); mparticle_events is an
// event_data send with device info, event data and user attributes, and a fifth of its rows identified by email.
// --no-hash leaves the hashing out of the CPU seconds (it costs in proportion to the message bytes).
import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Registry } from 'prom-client'
import { loadAverage } from './proc-stats.ts'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '3' },
    actions: { type: 'string', default: 'segment_identify,segment_track,braze,mparticle,mparticle_events' },
    'no-hash': { type: 'boolean', default: false },
  },
})
const ROWS = Number(args.rows)
const ROUNDS = Number(args.rounds)

// The ingress is a service, not a library: its modules are loaded by path (bench/ does not build against it).
interface Record_ {
  topic: string
  key: string
  value: string | Buffer
  headers: Record<string, string>
}
interface Outcome {
  accepted: number
  rejected: number
  failure?: string
}
type RunSend = (input: unknown, producer: unknown, metrics: unknown) => Promise<Outcome>
const ingress = new URL('../../services/ingress/src/', import.meta.url).href
const { findAction } = (await import(`${ingress}actions/index.ts`)) as { findAction: (name: string) => unknown }
const { runSend } = (await import(`${ingress}execute/run-send.ts`)) as { runSend: RunSend }
const { createIngressMetrics } = (await import(`${ingress}ingress-metrics.ts`)) as {
  createIngressMetrics: (registry: Registry) => unknown
}
const metrics = createIngressMetrics(new Registry())

const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'ES']
const plan = (i: number) => (i % 3 === 0 ? 'annual' : 'monthly')
const field = (name: string, tags: string[]) => ({ name, label: name, view: name.split('.')[0], tags, type: 'string' })
interface Spec {
  action: string
  form: Record<string, string>
  fields: ReturnType<typeof field>[]
  row: (i: number) => string
}
const segmentRow = (i: number) =>
  `{"users.id":{"value":"p-${i}"},"users.email":{"value":"p-${i}@example.com"},"users.plan":{"value":"${plan(i)}"},` +
  `"users.country":{"value":"${COUNTRIES[i % 7]}"},"orders.count":{"value":${i % 50}}}`
const segmentFields = [
  field('users.id', ['user_id']),
  field('users.email', ['email']),
  field('users.plan', []),
  field('users.country', []),
  field('orders.count', []),
]
const SPECS: Record<string, Spec> = {
  segment_identify: { action: 'segment_identify', form: {}, fields: segmentFields, row: segmentRow },
  segment_track: { action: 'segment_track', form: { event: 'Bench' }, fields: segmentFields, row: segmentRow },
  braze: {
    action: 'braze',
    form: { braze_key: 'external_id', braze_segment: 'LOOKER_EXPORT', braze_update_existing_only: 'no' },
    fields: [
      field('users.id', ['braze_id']),
      field('users.first_name', ['braze[first_name]']),
      field('users.plan', ['braze[plan]']),
      field('users.country', ['braze[country]']),
      field('orders.count', ['braze[orders]']),
    ],
    row: (i) =>
      `{"users.id":{"value":"p-${i}"},"users.first_name":{"value":"Name ${i}"},"users.plan":{"value":"${plan(i)}"},` +
      `"users.country":{"value":"${COUNTRIES[i % 7]}"},"orders.count":{"value":${i % 50}}}`,
  },
  mparticle: {
    action: 'mparticle',
    form: { data_type: 'user_data', environment: 'production', custom_event_type: 'other' },
    fields: [
      field('users.id', ['mp_customer_id']),
      field('users.email', ['mp_email']),
      field('users.plan', ['mp_user_attribute']),
      field('users.country', ['mp_user_attribute']),
      field('users.ltv', ['mp_user_attribute']),
    ],
    row: (i) =>
      `{"users.id":{"value":"p-${i}"},"users.email":{"value":"p-${i}@example.com"},"users.plan":{"value":"${plan(i)}"},` +
      `"users.country":{"value":"${COUNTRIES[i % 7]}"},"users.ltv":{"value":${i % 997}}}`,
  },
  mparticle_events: {
    action: 'mparticle',
    form: { data_type: 'event_data', environment: 'development', custom_event_type: 'other' },
    fields: [
      field('users.id', ['mp_customer_id']),
      field('users.email', ['mp_email']),
      field('users.plan', ['mp_user_attribute']),
      field('ev.name', ['mp_event_name']),
      field('ev.id', ['mp_event_id']),
      field('dev.brand', ['mp_device_info']),
      field('users.ltv', ['mp_custom_attribute']),
    ],
    row: (i) =>
      `{${i % 5 === 0 ? '' : `"users.id":{"value":"p-${i}"},`}"users.email":{"value":"p-${i}@example.com"},` +
      `"users.plan":{"value":${i % 5 === 0 ? 'null' : `"${plan(i)}"`}},"ev.name":{"value":"E${i % 3}"},` +
      `"ev.id":{"value":${i}},"dev.brand":{"value":"B"},"users.ltv":{"value":${i % 997}}}`,
  },
}

async function send(name: string, rows: number) {
  const spec = SPECS[name]
  if (spec === undefined) throw new Error(`unknown action ${name}; known: ${Object.keys(SPECS).join(', ')}`)
  const chunks: Buffer[] = []
  let text = `{"ran_at":"2026-12-07T00:00:00Z","fields":${JSON.stringify({ dimensions: spec.fields, measures: [], pivots: [] })},"data":[`
  for (let i = 0; i < rows; i++) {
    text += (i === 0 ? '' : ',') + spec.row(i)
    if (text.length > 65_536) {
      chunks.push(Buffer.from(text))
      text = ''
    }
  }
  chunks.push(Buffer.from(`${text}],"has_totals":false}`))
  const hash = createHash('sha256')
  let bytes = 0
  const acked = Promise.resolve()
  const producer = {
    send(record: Record_) {
      bytes += typeof record.value === 'string' ? Buffer.byteLength(record.value) : record.value.length
      if (!args['no-hash']) {
        hash.update(`${record.topic}\0${record.key}\0${JSON.stringify(record.headers)}\0`).update(record.value)
      }
      return acked
    },
    isWritable: () => true,
    whenWritable: () => acked,
  }
  // eslint-disable-next-line @typescript-eslint/require-await -- an async byte source
  async function* source(): AsyncGenerator<Uint8Array> {
    yield* chunks
  }
  const cpu0 = process.cpuUsage()
  const outcome = await runSend(
    {
      sendId: 'bench-send',
      action: findAction(spec.action),
      context: { connection: 'default', form: spec.form, hiddenFields: new Set() },
      sendKey: 'plan:1',
      receivedAt: new Date('2026-12-07T00:00:00Z'),
      openSource: () => Promise.resolve(source()),
      maxRowBytes: 1 << 20,
      maxFieldBytes: 1 << 16,
    },
    producer,
    metrics,
  )
  const cpu = process.cpuUsage(cpu0)
  if (outcome.failure !== undefined || outcome.accepted !== rows) throw new Error(`${name}: ${JSON.stringify(outcome)}`)
  return { cpuSeconds: (cpu.user + cpu.system) / 1e6, bytes, hash: hash.digest('hex').slice(0, 16) }
}

const names = args.actions.split(',')
for (const name of names) await send(name, 20_000) // warm-up
console.log(`| action | rows | ingress CPU s (lowest of ${ROUNDS}) | message bytes | records sha256 | load average |`)
console.log('|---|---:|---:|---:|---|---|')
for (const name of names) {
  const load0 = loadAverage()
  let best = await send(name, ROWS)
  for (let round = 1; round < ROUNDS; round++) {
    const again = await send(name, ROWS)
    if (again.cpuSeconds < best.cpuSeconds) best = again
  }
  const hash = args['no-hash'] ? '(not hashed)' : best.hash
  console.log(
    `| ${name} | ${ROWS.toLocaleString('en-US')} | ${best.cpuSeconds.toFixed(2)} | ${best.bytes.toLocaleString('en-US')} | ${hash} | ${load0} → ${loadAverage()} |`,
  )
}
