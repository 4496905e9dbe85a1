import { once } from 'node:events'
import { createWriteStream } from 'node:fs'

// A json_detail_lite_stream result of `rows` rows, written out as it is generated (never held whole).
// Fields: users.id (tag user_id), users.email (tag email) and five traits of mixed types. One row per line,
// so the JSON.parse ceiling can split rows at newlines; whitespace between elements is valid JSON.

export const RAN_AT = '2026-11-22T06:00:00+00:00'

export const FIELDS = {
  dimensions: [
    { name: 'users.id', label: 'Users ID', view: 'users', type: 'number', is_numeric: true, tags: ['user_id'] },
    { name: 'users.email', label: 'Users Email', view: 'users', type: 'string', tags: ['email'] },
    { name: 'users.name', label: 'Users Name', view: 'users', type: 'string', tags: [] },
    { name: 'users.plan', label: 'Users Plan', view: 'users', type: 'string', tags: [] },
    { name: 'users.signup_date', label: 'Users Signup Date', view: 'users', type: 'date', tags: [] },
    { name: 'users.is_active', label: 'Users Is Active', view: 'users', type: 'yesno', tags: [] },
  ],
  measures: [
    { name: 'orders.lifetime_value', label: 'Orders Lifetime Value', view: 'orders', measure: true, tags: [] },
  ],
  table_calculations: [],
  pivots: [],
}

const PLANS = ['free', 'starter', 'pro', 'enterprise']

/** Row `i` (0-based): deterministic, about 330 bytes of JSON. */
export function rowJson(i: number): string {
  const id = 1_000_000 + i
  const day = String(1 + (i % 28)).padStart(2, '0')
  const month = String(1 + (i % 12)).padStart(2, '0')
  return JSON.stringify({
    'users.id': { value: id, rendered: String(id) },
    'users.email': { value: `user${id}@example.com` },
    'users.name': { value: `User ${id}` },
    'users.plan': { value: PLANS[i % PLANS.length] },
    'users.signup_date': { value: `2024-${month}-${day}` },
    'users.is_active': { value: i % 3 !== 0 ? 'Yes' : 'No' },
    'orders.lifetime_value': { value: i % 10 === 0 ? 0 : Math.round(i * 7.31) / 100, rendered: null },
  })
}

/** Chunks of the whole document, `rowsPerChunk` rows at a time. */
export function* lookChunks(rows: number, rowsPerChunk = 1000): Generator<string> {
  yield `{"ran_at":${JSON.stringify(RAN_AT)},"fields":${JSON.stringify(FIELDS)},"data":[\n`
  for (let start = 0; start < rows; start += rowsPerChunk) {
    const end = Math.min(rows, start + rowsPerChunk)
    let chunk = ''
    for (let i = start; i < end; i++) chunk += rowJson(i) + (i === rows - 1 ? '\n' : ',\n')
    yield chunk
  }
  yield ']}\n'
}

/** Writes the document to `path` with backpressure; resolves with its size in bytes. */
export async function writeLook(path: string, rows: number): Promise<number> {
  const out = createWriteStream(path)
  let bytes = 0
  for (const chunk of lookChunks(rows)) {
    bytes += Buffer.byteLength(chunk)
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  return bytes
}
