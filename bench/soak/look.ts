import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import { type AddressInfo } from 'node:net'

// The soak's Looker: one generated json_detail_lite_stream Look whose columns carry the tags every action needs,
// served once per one-time download_url (Looker gives each scheduled action its own URL for the same Look).
//   users.id     "Users ID"     user_id (Segment, Recurly Engage), braze_id, mp_customer_id; Heap's join key
//   users.email  "Users Email"  email (Segment), mp_email
//   users.plan   "Plan"         braze[plan], mp_user_attribute
//   users.country "Country"     braze[country], mp_user_attribute
//   orders.count "Orders"       braze[orders], mp_user_attribute (a measure)
// Row i's user is `<prefix>-<i>`: every row is its own user, so "each row once" can be checked per user.

const FIELDS = {
  dimensions: [
    {
      name: 'users.id',
      label: 'Users ID',
      view: 'users',
      tags: ['user_id', 'braze_id', 'mp_customer_id'],
      type: 'string',
    },
    { name: 'users.email', label: 'Users Email', view: 'users', tags: ['email', 'mp_email'], type: 'string' },
    { name: 'users.plan', label: 'Plan', view: 'users', tags: ['braze[plan]', 'mp_user_attribute'], type: 'string' },
    {
      name: 'users.country',
      label: 'Country',
      view: 'users',
      tags: ['braze[country]', 'mp_user_attribute'],
      type: 'string',
    },
  ],
  measures: [
    {
      name: 'orders.count',
      label: 'Orders',
      view: 'orders',
      tags: ['braze[orders]', 'mp_user_attribute'],
      measure: true,
      type: 'count',
    },
  ],
  table_calculations: [],
  pivots: [],
}

/** Heap's join-key column, by its label. */
export const JOIN_KEY_LABEL = 'Users ID'

const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'ES']
const CHUNK_ROWS = 500

export function userId(prefix: string, i: number): string {
  return `${prefix}-${i}`
}

/** The row index of a user id of this Look, or undefined when it is not one. */
export function rowIndex(prefix: string, id: string): number | undefined {
  if (!id.startsWith(`${prefix}-`)) return undefined
  const digits = id.slice(prefix.length + 1)
  return /^(0|[1-9]\d*)$/.test(digits) ? Number(digits) : undefined
}

function row(prefix: string, i: number): string {
  const id = userId(prefix, i)
  return (
    `{"users.id":{"value":"${id}"},"users.email":{"value":"${id}@example.com"},` +
    `"users.plan":{"value":"${i % 3 === 0 ? 'annual' : 'monthly'}"},"users.country":{"value":"${COUNTRIES[i % 7]}"},` +
    `"orders.count":{"value":${i % 50}}}`
  )
}

async function write(res: ServerResponse, chunk: string): Promise<void> {
  if (!res.write(chunk)) await once(res, 'drain')
}

async function stream(res: ServerResponse, prefix: string, rows: number, ranAt: string): Promise<void> {
  await write(res, `{"ran_at":${JSON.stringify(ranAt)},"fields":${JSON.stringify(FIELDS)},"data":[`)
  for (let next = 0; next < rows;) {
    const until = Math.min(rows, next + CHUNK_ROWS)
    let chunk = ''
    for (; next < until; next++) chunk += next === 0 ? row(prefix, next) : `,${row(prefix, next)}`
    await write(res, chunk)
  }
  res.end('],"has_totals":false}')
}

export interface SoakLooker {
  origin: string
  /** A new one-time download_url of the Look. */
  downloadUrl(): string
  /** Download URLs fetched so far, and those whose body was written to the end. */
  readonly served: { started: number; finished: number }
  close(): Promise<void>
}

export async function startSoakLooker(prefix: string, rows: number): Promise<SoakLooker> {
  const ranAt = new Date().toISOString()
  const unused = new Set<string>()
  const served = { started: 0, finished: 0 }
  const server = createServer((req, res) => {
    const path = req.url ?? ''
    if (req.method !== 'GET' || !unused.delete(path)) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not found"}')
      return
    }
    served.started++
    res.writeHead(200, { 'content-type': 'application/json' })
    stream(res, prefix, rows, ranAt).then(
      () => void served.finished++,
      () => res.destroy(),
    )
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    served,
    downloadUrl() {
      const path = `/downloads/${randomUUID()}`
      unused.add(path)
      return `${origin}${path}`
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
