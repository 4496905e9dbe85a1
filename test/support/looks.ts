// Looker results in the json_detail_lite_stream shape (ran_at and fields, then data), built
// row by row so that a 100,000-row Look never has to exist as one string.

export interface LookField {
  name: string
  label: string
  view: string
  tags: string[]
  measure?: boolean
  is_numeric?: boolean
  type?: string
}

export interface IdentifyLookOptions {
  /** Prefix of every userId, so a test can count its own rows at the simulator. */
  prefix: string
  rows: number
  ranAt?: string
  /** Row indexes with no user_id (the email gives a deterministic anonymousId instead). */
  anonymousEvery?: number
  /** Row indexes with neither user_id nor email: the ingress must reject them. */
  rejectRows?: readonly number[]
}

export const IDENTIFY_FIELDS: { dimensions: LookField[]; measures: LookField[] } = {
  dimensions: [
    { name: 'users.id', label: 'Users ID', view: 'users', tags: ['user_id'], type: 'string' },
    { name: 'users.email', label: 'Users Email', view: 'users', tags: ['email'], type: 'string' },
    { name: 'users.plan', label: 'Users Plan', view: 'users', tags: [], type: 'string' },
    { name: 'users.vip', label: 'Users VIP', view: 'users', tags: [], type: 'yesno' },
  ],
  measures: [
    {
      name: 'orders.count',
      label: 'Orders Count',
      view: 'orders',
      tags: [],
      measure: true,
      is_numeric: true,
      type: 'count',
    },
  ],
}

export interface IdentifyRow {
  index: number
  userId: string | null
  email: string | null
  plan: string
  vip: boolean | null
  orders: number | null
}

export function identifyRow(options: IdentifyLookOptions, index: number): IdentifyRow {
  const rejected = options.rejectRows?.includes(index) ?? false
  const anonymous = options.anonymousEvery !== undefined && index % options.anonymousEvery === 0
  return {
    index,
    userId: rejected || anonymous ? null : `${options.prefix}-${index}`,
    email: rejected ? null : `${options.prefix}-${index}@example.com`,
    plan: index % 3 === 0 ? 'annual' : 'monthly',
    // 0, false and null are values Segment must receive as such (the reference turned them into []).
    vip: index % 5 === 0 ? null : index % 2 === 0,
    orders: index % 7 === 0 ? 0 : index % 11 === 0 ? null : index,
  }
}

/** One `data` element as Looker writes it. */
export function rowJson(row: IdentifyRow): string {
  return JSON.stringify({
    'users.id': { value: row.userId },
    'users.email': { value: row.email },
    'users.plan': { value: row.plan, rendered: row.plan.toUpperCase() },
    'users.vip': { value: row.vip },
    'orders.count': { value: row.orders, links: [{ label: 'Show All', url: '/explore/x', type: 'measure_default' }] },
  })
}

/** What the Segment simulator must receive for a row (messageId is checked separately: it is a UUIDv5). */
export function expectedSegmentItem(row: IdentifyRow, ranAt: string): Record<string, unknown> {
  const traits: Record<string, unknown> = {
    'users.plan': row.plan,
    'users.vip': row.vip,
    'orders.count': row.orders,
  }
  if (row.email !== null) traits.email = row.email
  return {
    type: 'identify',
    ...(row.userId === null ? {} : { userId: row.userId }),
    traits,
    timestamp: new Date(ranAt).toISOString(),
  }
}

export const DEFAULT_RAN_AT = '2026-11-22T06:00:00+00:00'

// Looker writes ran_at near the top, before data: the ingress uses it only when it precedes the first row.
export function lookHead(ranAt: string, fields: object = IDENTIFY_FIELDS): string {
  const described = JSON.stringify({ ...fields, table_calculations: [], pivots: [] })
  return `{"ran_at":${JSON.stringify(ranAt)},"fields":${described},"data":[`
}

export const LOOK_TAIL = '],"has_totals":false}'

/** The whole result as one string: for pushed (attachment) sends and small streamed ones. */
export function identifyLook(options: IdentifyLookOptions): { body: string; rows: IdentifyRow[]; ranAt: string } {
  const ranAt = options.ranAt ?? DEFAULT_RAN_AT
  const rows = Array.from({ length: options.rows }, (_, i) => identifyRow(options, i))
  return { body: lookHead(ranAt) + rows.map(rowJson).join(',') + LOOK_TAIL, rows, ranAt }
}

/** A Look of accounts: each row a user in a company, for segment_group (and segment_track with an event). */
export const ACCOUNT_FIELDS: { dimensions: LookField[]; measures: LookField[] } = {
  dimensions: [
    { name: 'users.id', label: 'Users ID', view: 'users', tags: ['user_id'], type: 'string' },
    { name: 'users.email', label: 'Users Email', view: 'users', tags: ['email'], type: 'string' },
    { name: 'companies.id', label: 'Companies ID', view: 'companies', tags: ['segment_group_id'], type: 'string' },
    { name: 'companies.tier', label: 'Companies Tier', view: 'companies', tags: [], type: 'string' },
  ],
  measures: [
    { name: 'orders.total', label: 'Orders Total', view: 'orders', tags: [], measure: true, is_numeric: true },
  ],
}

export interface AccountRow {
  index: number
  userId: string
  email: string
  groupId: string
  tier: string | null
  total: number
}

export function accountLook(options: { prefix: string; rows: number; ranAt?: string }): {
  body: string
  rows: AccountRow[]
  ranAt: string
} {
  const ranAt = options.ranAt ?? DEFAULT_RAN_AT
  const rows = Array.from({ length: options.rows }, (_, index) => ({
    index,
    userId: `${options.prefix}-${index}`,
    email: `${options.prefix}-${index}@example.com`,
    groupId: `${options.prefix}-company-${index % 10}`,
    tier: index % 4 === 0 ? null : index % 2 === 0 ? 'gold' : 'silver',
    total: index % 9 === 0 ? 0 : index * 1.5,
  }))
  const data = rows.map((row) =>
    JSON.stringify({
      'users.id': { value: row.userId },
      'users.email': { value: row.email },
      'companies.id': { value: row.groupId },
      'companies.tier': { value: row.tier },
      'orders.total': { value: row.total },
    }),
  )
  return { body: lookHead(ranAt, ACCOUNT_FIELDS) + data.join(',') + LOOK_TAIL, rows, ranAt }
}
