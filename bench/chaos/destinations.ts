// The five destinations as the chaos run sees them: the Look each one is sent (rows told apart by a per-send
// prefix), the bad rows it must refuse, and what its simulator (or S3) holds afterwards.
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { request } from 'undici'

export type DestinationName = 'segment' | 'braze' | 'heap' | 'mparticle' | 'recurly-engage'
export const DESTINATIONS: readonly DestinationName[] = ['segment', 'braze', 'heap', 'mparticle', 'recurly-engage']

interface LookField {
  name: string
  label: string
  view: string
  tags: string[]
  type: string
  measure?: boolean
}

const dimension = (name: string, label: string, tags: string[]): LookField => ({
  name,
  label,
  view: name.slice(0, name.indexOf('.')),
  tags,
  type: 'string',
})
const measure = (name: string, label: string, tags: string[]): LookField => ({
  ...dimension(name, label, tags),
  measure: true,
  type: 'count',
})

const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'ES']
export const plan = (i: number): string => (i % 3 === 0 ? 'annual' : 'monthly')
export const country = (i: number): string => COUNTRIES[i % 7]!
export const orders = (i: number): number => i % 50
export const userId = (prefix: string, i: number): string => `${prefix}-${i}`
export const email = (prefix: string, i: number): string => `${prefix}-${i}@example.com`

/** What a destination holds for one send, read back after it. */
export interface Observation {
  /** Distinct good rows the destination holds (for state destinations: with exactly the expected state). */
  delivered: number
  /** Good rows present more than once under different idempotency keys, or with a state other than expected. */
  effectiveDuplicates: number
  /** Items the destination received again (same key, or the same row re-applied): re-deliveries. */
  rawRedeliveries: number
  /** Bad rows the destination accepted anyway. */
  badDelivered: number
  /** Files written for the send (recurly-engage). */
  files?: number
}

export interface Destination {
  name: DestinationName
  /** The Action Hub action. */
  action: string
  /** The simulator component of `npm start` (none: recurly-engage writes to S3). */
  simulator?: string
  form: Record<string, string>
  fields: { dimensions: LookField[]; measures: LookField[] }
  /** One `data` element of the Look; a bad row for destinations whose bad rows the ingress must refuse. */
  row(prefix: string, i: number, bad: boolean): string
  /**
   * How a bad row is refused: `simulator` (a simulator rule answers 400 to any request carrying it: the service
   * must isolate it and dead-letter it) or `ingress` (the ingress's row check refuses it before Kafka).
   */
  badRows: 'simulator' | 'ingress'
  /** Text that only a request carrying bad row i holds. */
  needle(prefix: string, i: number): string
  /** What the destination holds of the send with this prefix. */
  observe(prefix: string, good: ReadonlySet<number>, bad: ReadonlySet<number>): Promise<Observation>
  /** A number that changes whenever the destination makes progress (accepted items, staged chunks). */
  progress(): Promise<number>
  /** Distinct rows the destination holds so far (none for recurly-engage, whose rows appear with its file). */
  delivered?(): Promise<number>
}

export interface Endpoints {
  simulator(name: string): string
  s3: S3Client
  bucket: string
}

export async function admin<T>(
  base: string,
  path: string,
  method = 'GET',
  body?: unknown,
  timeoutMs = 30_000,
): Promise<T> {
  const res = await request(`${base}/__admin${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`${method} ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`)
  return JSON.parse(text) as T
}

interface Paged<T> {
  total: number
  items: T[]
}

/** Every entry of a simulator list (accepted, duplicates), page by page. */
async function list<T>(base: string, name: string): Promise<T[]> {
  const out: T[] = []
  for (let offset = 0; ; offset += 5000) {
    const page = await admin<Paged<T>>(base, `/${name}?offset=${offset}&limit=5000`)
    out.push(...page.items)
    if (page.items.length < 5000) return out
  }
}

const rowIndex = (prefix: string, text: unknown): number | undefined => {
  if (typeof text !== 'string' || !text.startsWith(`${prefix}-`)) return undefined
  const n = Number.parseInt(text.slice(prefix.length + 1), 10)
  return Number.isInteger(n) ? n : undefined
}

/** Rows accepted under more than one key, and items received again: for destinations with an idempotency key. */
function keyed(
  accepted: { row: number | undefined; key: string | undefined }[],
  duplicates: number,
  good: ReadonlySet<number>,
  bad: ReadonlySet<number>,
): Observation {
  const keys = new Map<number, Set<string>>()
  let badDelivered = 0
  let extra = 0
  for (const { row, key } of accepted) {
    if (row === undefined) continue
    if (bad.has(row)) badDelivered++
    if (!good.has(row)) continue
    const set = keys.get(row) ?? new Set<string>()
    if (key === undefined || set.has(key)) extra++
    set.add(key ?? `no-key-${set.size}`)
    keys.set(row, set)
  }
  let effectiveDuplicates = 0
  for (const set of keys.values()) effectiveDuplicates += set.size - 1
  return { delivered: keys.size, effectiveDuplicates, rawRedeliveries: duplicates + extra, badDelivered }
}

/** Distinct ids (Segment messageIds, mParticle source_request_ids) or profiles (Braze) or users (Heap) held. */
async function distinct(base: string, key: 'acceptedIds' | 'profiles' | 'users'): Promise<number> {
  const state = await admin<{ counters: { acceptedIds: number }; profiles?: number; users?: number }>(base, '/state')
  return (key === 'acceptedIds' ? state.counters.acceptedIds : state[key]) ?? 0
}

async function simulatorProgress(base: string): Promise<number> {
  // Sampled every 200 ms: a sample that does not answer within 5 s is counted as failed and the next one is taken,
  // so one stuck request cannot blank the progress record of a whole send.
  const state = await admin<{ counters: { accepted: number; duplicates: number; rejected: number } }>(
    base,
    '/state',
    'GET',
    undefined,
    5_000,
  )
  return state.counters.accepted + state.counters.duplicates + state.counters.rejected
}

export function destinations(endpoints: Endpoints): Record<DestinationName, Destination> {
  const sim = (name: string) => endpoints.simulator(name)
  return {
    segment: {
      name: 'segment',
      action: 'segment_identify',
      simulator: 'segment-simulator',
      form: {},
      fields: {
        dimensions: [
          dimension('users.id', 'Users ID', ['user_id']),
          dimension('users.email', 'Users Email', ['email']),
          dimension('users.plan', 'Users Plan', []),
          dimension('users.country', 'Users Country', []),
        ],
        measures: [measure('orders.count', 'Orders Count', [])],
      },
      row: (prefix, i) =>
        JSON.stringify({
          'users.id': { value: userId(prefix, i) },
          'users.email': { value: email(prefix, i) },
          'users.plan': { value: plan(i) },
          'users.country': { value: country(i) },
          'orders.count': { value: orders(i) },
        }),
      badRows: 'simulator',
      needle: (prefix, i) => `"${userId(prefix, i)}"`,
      async observe(prefix, good, bad) {
        type Entry = { id?: string; item: { userId?: string } }
        const accepted = await list<Entry>(sim('segment-simulator'), 'accepted')
        const duplicates = await list<Entry>(sim('segment-simulator'), 'duplicates')
        const mine = (e: Entry) => rowIndex(prefix, e.item.userId)
        return keyed(
          accepted.map((e) => ({ row: mine(e), key: e.id })),
          duplicates.filter((e) => mine(e) !== undefined).length,
          good,
          bad,
        )
      },
      progress: () => simulatorProgress(sim('segment-simulator')),
      delivered: () => distinct(sim('segment-simulator'), 'acceptedIds'),
    },
    mparticle: {
      name: 'mparticle',
      action: 'mparticle',
      simulator: 'mparticle-simulator',
      form: { data_type: 'user_data', environment: 'production', custom_event_type: 'other' },
      fields: {
        dimensions: [
          dimension('users.id', 'Users ID', ['mp_customer_id']),
          dimension('users.email', 'Users Email', ['mp_email']),
          dimension('users.plan', 'Users Plan', ['mp_user_attribute']),
          dimension('users.country', 'Users Country', ['mp_user_attribute']),
        ],
        measures: [measure('orders.count', 'Orders Count', ['mp_user_attribute'])],
      },
      row: (prefix, i) =>
        JSON.stringify({
          'users.id': { value: userId(prefix, i) },
          'users.email': { value: email(prefix, i) },
          'users.plan': { value: plan(i) },
          'users.country': { value: country(i) },
          'orders.count': { value: orders(i) },
        }),
      badRows: 'simulator',
      needle: (prefix, i) => `"${userId(prefix, i)}"`,
      async observe(prefix, good, bad) {
        type Entry = { id?: string; item: { user_identities?: { customer_id?: string } } }
        const accepted = await list<Entry>(sim('mparticle-simulator'), 'accepted')
        const duplicates = await list<Entry>(sim('mparticle-simulator'), 'duplicates')
        const mine = (e: Entry) => rowIndex(prefix, e.item.user_identities?.customer_id)
        return keyed(
          accepted.map((e) => ({ row: mine(e), key: e.id })),
          duplicates.filter((e) => mine(e) !== undefined).length,
          good,
          bad,
        )
      },
      progress: () => simulatorProgress(sim('mparticle-simulator')),
      delivered: () => distinct(sim('mparticle-simulator'), 'acceptedIds'),
    },
    braze: {
      name: 'braze',
      action: 'braze',
      simulator: 'braze-simulator',
      form: { braze_update_existing_only: 'no' },
      fields: {
        dimensions: [
          dimension('users.id', 'Users ID', ['braze_id']),
          dimension('users.first_name', 'First Name', ['braze[first_name]']),
          dimension('users.plan', 'Plan', ['braze[plan]']),
          dimension('users.country', 'Country', ['braze[country]']),
        ],
        measures: [measure('orders.count', 'Orders', ['braze[orders]'])],
      },
      row: (prefix, i) =>
        JSON.stringify({
          'users.id': { value: userId(prefix, i) },
          'users.first_name': { value: `Name ${i}` },
          'users.plan': { value: plan(i) },
          'users.country': { value: country(i) },
          'orders.count': { value: orders(i) },
        }),
      badRows: 'simulator',
      needle: (prefix, i) => `"${userId(prefix, i)}"`,
      async observe(prefix, good, bad) {
        // State: each profile must hold exactly the row's attributes (re-applied updates leave it unchanged).
        type Profile = { external_id?: string; attributes: Record<string, unknown> }
        const { profiles } = await admin<{ profiles: Profile[] }>(sim('braze-simulator'), '/profiles')
        type Entry = { item: { external_id?: string } }
        const accepted = await list<Entry>(sim('braze-simulator'), 'accepted')
        return state(
          profiles.map((p) => ({ row: rowIndex(prefix, p.external_id), value: p.attributes })),
          accepted.map((e) => rowIndex(prefix, e.item.external_id)),
          (i, attributes) =>
            attributes.first_name === `Name ${i}` &&
            attributes.plan === plan(i) &&
            attributes.country === country(i) &&
            attributes.orders === orders(i) &&
            Object.keys(attributes).every((key) =>
              ['first_name', 'plan', 'country', 'orders', 'looker_export'].includes(key),
            ) &&
            (attributes.looker_export === undefined ||
              (Array.isArray(attributes.looker_export) &&
                new Set(attributes.looker_export).size === attributes.looker_export.length)),
          good,
          bad,
        )
      },
      progress: () => simulatorProgress(sim('braze-simulator')),
      delivered: () => distinct(sim('braze-simulator'), 'profiles'),
    },
    heap: {
      name: 'heap',
      action: 'heap',
      simulator: 'heap-simulator',
      form: { property_type: 'user', heap_field: 'Users Email' },
      fields: {
        dimensions: [
          dimension('users.email', 'Users Email', []),
          dimension('users.plan', 'Users Plan', []),
          dimension('users.country', 'Users Country', []),
        ],
        measures: [measure('orders.count', 'Orders Count', [])],
      },
      row: (prefix, i) =>
        JSON.stringify({
          'users.email': { value: email(prefix, i) },
          'users.plan': { value: plan(i) },
          'users.country': { value: country(i) },
          'orders.count': { value: orders(i) },
        }),
      badRows: 'simulator',
      needle: (prefix, i) => `"${email(prefix, i)}"`,
      async observe(prefix, good, bad) {
        const { users } = await admin<{ users: Record<string, Record<string, unknown>> }>(
          sim('heap-simulator'),
          '/users',
        )
        const fromEmail = (key: string | undefined) => rowIndex(prefix, key?.slice(key.indexOf(':') + 1))
        type Entry = { item: { identity?: string } }
        const accepted = await list<Entry>(sim('heap-simulator'), 'accepted')
        return state(
          Object.entries(users).map(([key, value]) => ({ row: fromEmail(key), value })),
          accepted.map((e) => fromEmail(`:${e.item.identity ?? ''}`)),
          (i, properties) =>
            Object.keys(properties).length === 3 &&
            properties['Users Plan'] === plan(i) &&
            properties['Users Country'] === country(i) &&
            properties['Orders Count'] === orders(i),
          good,
          bad,
        )
      },
      progress: () => simulatorProgress(sim('heap-simulator')),
      delivered: () => distinct(sim('heap-simulator'), 'users'),
    },
    'recurly-engage': {
      name: 'recurly-engage',
      action: 'recurly_engage',
      form: {},
      fields: {
        dimensions: [
          dimension('users.id', 'Users ID', ['user_id']),
          dimension('users.email', 'Users Email', []),
          dimension('users.plan', 'Users Plan', []),
          dimension('users.country', 'Users Country', []),
        ],
        measures: [measure('orders.count', 'Orders Count', [])],
      },
      // A cell holding an object can never be a CSV cell: the ingress refuses the row.
      row: (prefix, i, bad) =>
        JSON.stringify({
          'users.id': { value: userId(prefix, i) },
          'users.email': { value: email(prefix, i) },
          'users.plan': { value: bad ? { tier: plan(i) } : plan(i) },
          'users.country': { value: country(i) },
          'orders.count': { value: orders(i) },
        }),
      badRows: 'ingress',
      needle: (prefix, i) => `"${userId(prefix, i)}"`,
      async observe(prefix, good, bad) {
        const { s3, bucket } = endpoints
        const rows: (number | undefined)[] = []
        let files = 0
        for (const key of await keys(s3, bucket, 'ingest/')) {
          const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
          const text = (await object.Body?.transformToString('utf8')) ?? ''
          const lines = text.split('\r\n').filter((line) => line !== '')
          let mine = false
          for (const line of lines.slice(1)) {
            const i = rowIndex(prefix, line.slice(0, line.indexOf(',')))
            if (i === undefined) continue
            mine = true
            // A row counts only when every cell is written as the row holds it.
            const expected = `${userId(prefix, i)},${email(prefix, i)},${plan(i)},${country(i)},${orders(i)}`
            rows.push(line === expected || bad.has(i) ? i : undefined)
          }
          if (mine) files++
        }
        const observation = keyed(
          rows.map((row, n) => ({ row, key: `line-${n}` })),
          0,
          good,
          bad,
        )
        // A CSV row has no idempotency key: a row written twice is an effective duplicate.
        return { ...observation, rawRedeliveries: observation.effectiveDuplicates, files }
      },
      // Staged chunks and published files: any change is progress.
      progress: async () => (await keys(endpoints.s3, endpoints.bucket, '')).length,
    },
  }
}

async function keys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = []
  let token: string | undefined
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
    )
    for (const object of page.Contents ?? []) if (object.Key) out.push(object.Key)
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return out
}

/** For destinations whose items are state: rows whose final state differs from the row are effective duplicates. */
function state(
  held: { row: number | undefined; value: Record<string, unknown> }[],
  accepted: (number | undefined)[],
  matches: (i: number, value: Record<string, unknown>) => boolean,
  good: ReadonlySet<number>,
  bad: ReadonlySet<number>,
): Observation {
  let delivered = 0
  let wrong = 0
  let badDelivered = 0
  for (const { row, value } of held) {
    if (row === undefined) continue
    if (bad.has(row)) badDelivered++
    if (!good.has(row)) continue
    if (matches(row, value)) delivered++
    else wrong++
  }
  const applied = accepted.filter((row) => row !== undefined && good.has(row)).length
  return {
    delivered: delivered + wrong,
    effectiveDuplicates: wrong,
    rawRedeliveries: Math.max(0, applied - delivered - wrong),
    badDelivered,
  }
}
