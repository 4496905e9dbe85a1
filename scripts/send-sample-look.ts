// `npm run sample`: sends a small Look through the pipeline that `npm start` runs, the way Looker does
// (execute with a one-time download_url), follows the send record until the destination's service delivered
// every row, then shows what the destination received: the last item its simulator accepted, or for Recurly
// Engage the CSV file the send produced in the local S3.
//
//   npm run sample                                   the segment_identify action, to the Segment simulator
//   npm run sample -- --destination braze            or heap, mparticle, recurly-engage (segment by default)
//
// Environment (defaults match `npm start`; every address is a loopback one):
//   INGRESS_URL              http://127.0.0.1:8080
//   SEGMENT_SIMULATOR_URL    http://127.0.0.1:4010
//   BRAZE_SIMULATOR_URL      http://127.0.0.1:4011
//   HEAP_SIMULATOR_URL       http://127.0.0.1:4012
//   MPARTICLE_SIMULATOR_URL  http://127.0.0.1:4040
//   S3_URL                   http://127.0.0.1:4569: the local S3, where the sample reads the CSV recurly-engage
//                            wrote (the `s3` line `npm start` prints)
//   ACTION_HUB_SECRET        else the one `npm start` keeps in .data/action-hub-secret
//   SAMPLE_ROWS              25
//   SAMPLE_LOOKER_PORT       8099: where the Looker stand-in serves the Look (in the ingress's LOOKER_HOSTS)
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { generateToken } from '../services/ingress/src/looker/token.ts'

/** A failure the sample explains in one message (never with a row value), exiting 1. */
class SampleError extends Error {}

const root = join(import.meta.dirname, '..')
const DEADLINE_MS = 60_000
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

function loopbackUrl(variable: string, fallback: string): string {
  const value = process.env[variable] || fallback
  const url = URL.canParse(value) ? new URL(value) : undefined
  if (url?.protocol !== 'http:' || !LOOPBACK.has(url.hostname)) {
    throw new SampleError(`${variable} must be an http:// address on this machine (127.0.0.1), got "${value}"`)
  }
  return value.replace(/\/+$/, '')
}

// The sample Look: four columns, one row per sample user. Each destination tags them the way its action reads them.
const COLUMNS = [
  { name: 'users.id', label: 'Users ID', measure: false },
  { name: 'users.email', label: 'Users Email', measure: false },
  { name: 'users.plan', label: 'Users Plan', measure: false },
  { name: 'orders.count', label: 'Orders Count', measure: true },
] as const

type Column = (typeof COLUMNS)[number]['name']

/** Where the sample reads what the destination received. */
type Received =
  | {
      kind: 'simulator'
      /** As the destination calls itself. */
      name: string
      /** The variable that overrides the simulator's address, and the address `npm start` gives it. */
      url: [variable: string, fallback: string]
      /** What one accepted item is. */
      item: string
    }
  | { kind: 's3' }

interface Destination {
  /** The Looker action the sample runs. */
  action: string
  /** The service (`npm start` component) that delivers the rows: where to look when they do not arrive. */
  service: string
  /** The tags of the Look's columns; a column not listed has none. */
  tags: Partial<Record<Column, string[]>>
  /** The action's form as a user fills it in Looker (every field shown, none left to the ingress's defaults). */
  form: Record<string, string>
  received: Received
}

// Every form ends with the per-send options: send the rows (no dry run), all of them.
const SEND_OPTIONS = { lookstream_run: 'send', lookstream_rows: 'all' }

const DESTINATIONS = {
  // segment_identify: one identify per row; userId is the user_id-tagged column, traits are the email (email tag)
  // and the other columns by field name (users.plan, orders.count).
  segment: {
    action: 'segment_identify',
    service: 'segment',
    tags: { 'users.id': ['user_id'], 'users.email': ['email'] },
    form: { connection: 'default', ...SEND_OPTIONS },
    received: {
      kind: 'simulator',
      name: 'Segment',
      url: ['SEGMENT_SIMULATOR_URL', 'http://127.0.0.1:4010'],
      item: 'event',
    },
  },
  // braze: the braze_id-tagged column is each user's external_id (Unique Key); email, plan and orders_count are
  // attributes (braze[…] tags); LOOKER_EXPORT is added to every user's looker_export attribute, and a null cell
  // leaves its attribute unchanged. Update Existing Users Only is "No (create new users)": the Braze simulator starts
  // without profiles, and with "Yes" Braze ignores the rows of users it does not know.
  braze: {
    action: 'braze',
    service: 'braze',
    tags: {
      'users.id': ['braze_id'],
      'users.email': ['braze[email]'],
      'users.plan': ['braze[plan]'],
      'orders.count': ['braze[orders_count]'],
    },
    form: {
      connection: 'default',
      braze_key: 'external_id',
      braze_segment: 'LOOKER_EXPORT',
      braze_update_existing_only: 'no',
      braze_null_values: 'skip',
      ...SEND_OPTIONS,
    },
    received: {
      kind: 'simulator',
      name: 'Braze',
      url: ['BRAZE_SIMULATOR_URL', 'http://127.0.0.1:4011'],
      item: 'attributes object',
    },
  },
  // heap: user properties matched on the Users ID column (the Join Key Column, named by its label; Heap's action
  // reads no tags); the other columns become the properties Users Email, Users Plan and Orders Count. Environment
  // ID empty: the connection's own environment. Long values: reject the row (the sample has none).
  heap: {
    action: 'heap',
    service: 'heap',
    tags: {},
    form: {
      connection: 'default',
      property_type: 'user',
      env_id: '',
      heap_field: 'Users ID',
      long_values: 'reject',
      ...SEND_OPTIONS,
    },
    received: { kind: 'simulator', name: 'Heap', url: ['HEAP_SIMULATOR_URL', 'http://127.0.0.1:4012'], item: 'user' },
  },
  // mparticle: user profiles (Data Type user_data) in the development environment; the customer_id and email
  // identities come from the mp_customer_id and mp_email tags, the other columns become the user attributes
  // looker_users.plan and looker_orders.count. Custom Event Type (for events only) keeps its default.
  mparticle: {
    action: 'mparticle',
    service: 'mparticle',
    tags: { 'users.id': ['mp_customer_id'], 'users.email': ['mp_email'] },
    form: {
      connection: 'default',
      data_type: 'user_data',
      environment: 'development',
      custom_event_type: 'other',
      ...SEND_OPTIONS,
    },
    received: {
      kind: 'simulator',
      name: 'mParticle',
      url: ['MPARTICLE_SIMULATOR_URL', 'http://127.0.0.1:4040'],
      item: 'batch',
    },
  },
  // recurly_engage: one CSV file for the send, user_id first (the customer id: the user_id-tagged column), then the
  // other columns named by their labels: user_id,Users Email,Users Plan,Orders Count.
  'recurly-engage': {
    action: 'recurly_engage',
    service: 'recurly-engage',
    tags: { 'users.id': ['user_id'] },
    form: { connection: 'default', ...SEND_OPTIONS },
    received: { kind: 's3' },
  },
} satisfies Record<string, Destination>

type DestinationName = keyof typeof DESTINATIONS

function isDestination(name: string): name is DestinationName {
  return Object.keys(DESTINATIONS).includes(name)
}

function destinationOf(args: string[]): Destination {
  const known = Object.keys(DESTINATIONS).join(', ')
  let name: string
  try {
    const { values } = parseArgs({ args, options: { destination: { type: 'string' } }, strict: true })
    name = values.destination ?? 'segment'
  } catch (err) {
    throw new SampleError(
      `${(err as Error).message}\nusage: npm run sample [-- --destination ${Object.keys(DESTINATIONS).join('|')}]`,
    )
  }
  if (!isDestination(name)) throw new SampleError(`unknown destination "${name}"; the known ones are ${known}`)
  return DESTINATIONS[name]
}

function secret(): string {
  if (process.env.ACTION_HUB_SECRET) return process.env.ACTION_HUB_SECRET
  const file = join(root, '.data', 'action-hub-secret')
  if (!existsSync(file))
    throw new SampleError('no .data/action-hub-secret: is `npm start` running? (or set ACTION_HUB_SECRET)')
  return readFileSync(file, 'utf8').trim()
}

function look(destination: Destination, rows: number, ranAt: string): string {
  const field = (column: (typeof COLUMNS)[number]) => ({
    name: column.name,
    label: column.label,
    tags: destination.tags[column.name] ?? [],
  })
  const fields = {
    dimensions: COLUMNS.filter((c) => !c.measure).map(field),
    measures: COLUMNS.filter((c) => c.measure).map(field),
  }
  const data = Array.from({ length: rows }, (_, i) => ({
    'users.id': { value: `sample-user-${i + 1}` },
    'users.email': { value: `user${i + 1}@example.com` },
    'users.plan': { value: i % 3 === 0 ? 'annual' : 'monthly' },
    'orders.count': { value: i % 5 },
  }))
  return JSON.stringify({ ran_at: ranAt, fields, data })
}

/** fetch, with a failure to connect told as which component did not answer. */
async function call(what: string, url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init)
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause
    const why = cause?.code ?? cause?.message ?? (err as Error).message
    throw new SampleError(`${what} at ${new URL(url).origin} did not answer (${why}): is \`npm start\` running?`)
  }
}

async function json<T>(what: string, url: string, init?: RequestInit): Promise<T> {
  const res = await call(what, url, init)
  if (!res.ok) throw new SampleError(`${what} answered HTTP ${res.status} to GET ${new URL(url).pathname}`)
  return (await res.json()) as T
}

interface SendRecord {
  status: 'running' | 'succeeded' | 'failed'
  accepted: number
  delivered?: number
  deadLettered?: number
  file?: string
  fileError?: string
}

/** Why the send can no longer reach `rows` delivered rows, or undefined while it can. */
function stuck(record: SendRecord, rows: number, service: string): string | undefined {
  if (record.status === 'failed') return 'the ingress failed the send'
  if (record.status === 'succeeded' && record.accepted < rows)
    return `the ingress accepted ${record.accepted} of the ${rows} rows: Looker’s answer says why`
  if ((record.deadLettered ?? 0) > 0)
    return `the ${service} service dead-lettered ${record.deadLettered} rows: see its output`
  if (record.fileError !== undefined) return `the ${service} service wrote no file: ${record.fileError}`
  return undefined
}

async function main(): Promise<void> {
  const destination = destinationOf(process.argv.slice(2))
  const ingressUrl = loopbackUrl('INGRESS_URL', 'http://127.0.0.1:8080')
  const received = destination.received
  const simulatorUrl = received.kind === 'simulator' ? loopbackUrl(...received.url) : undefined
  const s3Url = received.kind === 's3' ? loopbackUrl('S3_URL', 'http://127.0.0.1:4569') : undefined
  const rows = Number(process.env.SAMPLE_ROWS ?? 25)
  if (!Number.isInteger(rows) || rows < 1)
    throw new SampleError('SAMPLE_ROWS must be a whole number of rows, 1 or more')
  const lookerPort = Number(process.env.SAMPLE_LOOKER_PORT ?? 8099) // listed in the ingress's LOOKER_HOSTS by `npm start`
  if (!Number.isInteger(lookerPort) || lookerPort < 1 || lookerPort > 65535)
    throw new SampleError('SAMPLE_LOOKER_PORT must be a port number')
  const token = generateToken(secret())
  const auth = { authorization: `Token token="${token}"` }

  // Items the simulator accepted since it started (its lists keep the latest; `evicted` counts those let go).
  const simulatorName = received.kind === 'simulator' ? `the ${received.name} simulator` : ''
  const acceptedSoFar = async (): Promise<{ count: number; total: number }> => {
    const page = await json<{ total: number; evicted: number }>(
      simulatorName,
      `${simulatorUrl}/__admin/accepted?offset=0&limit=0`,
    )
    return { count: page.total + page.evicted, total: page.total }
  }

  const body = look(destination, rows, new Date().toISOString())
  let served = false
  const looker = createServer((req, res) => {
    // Looker's download URLs are single-use.
    if (served || req.url !== '/download/sample') return void res.writeHead(404).end()
    served = true
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>((resolve, reject) => looker.once('error', reject).listen(lookerPort, '127.0.0.1', resolve))
  try {
    const before = simulatorUrl === undefined ? undefined : await acceptedSoFar()
    const executeUrl = `${ingressUrl}/actions/${destination.action}/execute`
    console.log(`Sending a ${rows}-row Look to ${executeUrl} …`)
    const res = await call('the ingress', executeUrl, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', 'user-agent': 'LookerOutgoingWebhook/24.0.0' },
      body: JSON.stringify({
        type: 'query',
        scheduled_plan: {
          scheduled_plan_id: 1,
          title: 'lookstream sample',
          type: 'Look',
          download_url: `http://127.0.0.1:${lookerPort}/download/sample`,
        },
        data: {},
        form_params: destination.form,
      }),
    })
    const text = (await res.text()).trim()
    let answer: { looker?: { success: boolean; message: string; send_id?: string } } | undefined
    try {
      answer = JSON.parse(text) as typeof answer
    } catch {
      answer = undefined
    }
    if (answer?.looker === undefined)
      throw new SampleError(`the ingress answered HTTP ${res.status}: ${text.slice(0, 500)}`)
    console.log(`Looker would see: ${JSON.stringify(answer.looker)}`)
    const sendId = answer.looker.send_id
    if (!answer.looker.success) throw new SampleError('the ingress did not take the send: Looker’s answer says why')
    if (sendId === undefined) throw new SampleError('Looker’s answer names no send_id')

    // Progress from the send record: the destination services count what they delivered into it.
    const recordUrl = `${ingressUrl}/sends/${encodeURIComponent(sendId)}`
    const deadline = Date.now() + DEADLINE_MS
    let record: SendRecord
    // On a terminal the count is rewritten in place; elsewhere (a log, a test) it gets a line each time it changes.
    const inPlace = process.stdout.isTTY
    let shown: number | undefined
    for (;;) {
      record = await json<SendRecord>('the ingress', recordUrl, { headers: auth })
      const delivered = record.delivered ?? 0
      const line = `The ${destination.service} service delivered ${delivered}/${rows} rows`
      if (inPlace) process.stdout.write(`\r${line}`)
      else if (delivered !== shown) process.stdout.write(`${line}\n`)
      shown = delivered
      if (delivered >= rows) break
      const why = stuck(record, rows, destination.service)
      const late = Date.now() >= deadline
      if (why !== undefined || late) {
        if (inPlace) process.stdout.write('\n')
        const problem =
          why ??
          `only ${delivered} of ${rows} rows were delivered within ${DEADLINE_MS / 1000} s: see the ${destination.service} service's output`
        throw new SampleError(`${problem} (send record: GET /sends/${sendId})`)
      }
      await sleep(250)
    }
    if (inPlace) process.stdout.write('\n')

    if (received.kind === 'simulator') {
      const after = await acceptedSoFar()
      if (after.count <= (before?.count ?? 0)) {
        throw new SampleError(
          `${simulatorName} at ${simulatorUrl} accepted nothing from this send: the ${destination.service} service delivers elsewhere`,
        )
      }
      const last = await json<{ items: { item: unknown }[] }>(
        simulatorName,
        `${simulatorUrl}/__admin/accepted?offset=${after.total - 1}&limit=1`,
      )
      console.log(`The last ${received.item} as ${received.name} received it:`)
      console.log(JSON.stringify(last.items[0]?.item, null, 2))
    } else {
      const location = /^s3:\/\/([^/]+)\/(.+)$/.exec(record.file ?? '')
      if (location === null) throw new SampleError(`the send record names no file (GET /sends/${sendId})`)
      const [, bucket = '', key = ''] = location
      console.log(`The file ${destination.service} wrote: bucket ${bucket}, key ${key}`)
      const { readObjectText } = await import('../packages/testing/src/s3-client.ts')
      try {
        // The header and the first rows (the sample's cells hold no line breaks).
        const lines = (await readObjectText(s3Url, bucket, key)).split('\r\n').slice(0, 6)
        console.log(`Its first lines:\n${lines.join('\n')}`)
      } catch (err) {
        // Delivered all the same (the send record says so): only showing the file failed.
        console.log(
          `Its first lines could not be read from ${s3Url} (${(err as Error).name}): set S3_URL to the s3 address \`npm start\` printed.`,
        )
      }
    }
    console.log(`The send record (GET /sends/${sendId}):\n${JSON.stringify(record, null, 2)}`)
  } finally {
    looker.close()
  }
}

try {
  await main()
} catch (err) {
  if (!(err instanceof SampleError)) throw err
  console.error(err.message)
  process.exitCode = 1
}
