import { anonymousIdForEmail } from '../../src/actions/anonymous-id.ts'
import { type JsonDetailFields } from '../../src/looker/json-detail-reader.ts'

// Small Looks written for these tests: one per action, each with a row the action must reject.

export const RAN_AT = '2026-11-20T06:00:00+00:00'
export const RAN_AT_ISO = '2026-11-20T06:00:00.000Z'

export interface LookFixture {
  action: string
  form: Record<string, string>
  fields: JsonDetailFields
  rows: Record<string, unknown>[]
  /** Messages as produced, without messageId, timestamp and context.lookstream; with the source row number. */
  expected: { row: number; topic: string; key: string; message: Record<string, unknown> }[]
  rejected: { row: number; reason: string }[]
}

const v = (value: unknown) => ({ value })
const seg = { All: false, Segment: { connection: 'default' } }

export const looks: LookFixture[] = [
  {
    action: 'segment_identify',
    form: {},
    fields: {
      dimensions: [
        { name: 'members.mail', label: 'Members Mail', tags: ['email'] },
        { name: 'members.uid', label: 'Members UID', tags: ['user_id'] },
        { name: 'members.tier', label: 'Members Tier', tags: [] },
      ],
      measures: [{ name: 'orders.total', label: 'Orders Total', tags: [] }],
    },
    rows: [
      {
        'members.mail': v('kim@example.net'),
        'members.uid': v('m-1'),
        'members.tier': v('gold'),
        'orders.total': v(0),
      },
      {
        'members.mail': v('lee@example.net'),
        'members.uid': v(null),
        'members.tier': v(null),
        'orders.total': v(3.25),
      },
      { 'members.mail': v(null), 'members.uid': v(null), 'members.tier': v('x'), 'orders.total': v(1) },
    ],
    expected: [
      {
        row: 1,
        topic: 'lookstream.identify.v1',
        key: 'm-1',
        message: {
          type: 'identify',
          userId: 'm-1',
          traits: { 'members.tier': 'gold', 'orders.total': 0, email: 'kim@example.net' },
          integrations: seg,
        },
      },
      {
        row: 2,
        topic: 'lookstream.identify.v1',
        key: anonymousIdForEmail('lee@example.net'),
        message: {
          type: 'identify',
          anonymousId: anonymousIdForEmail('lee@example.net'),
          traits: { 'members.tier': null, 'orders.total': 3.25, email: 'lee@example.net' },
          integrations: seg,
        },
      },
    ],
    rejected: [{ row: 3, reason: 'row has no user_id, segment_anonymous_id or email value' }],
  },
  {
    action: 'segment_track',
    form: { event: 'Plan Viewed', connection: 'eu' },
    fields: {
      dimensions: [
        { name: 'v.uid', tags: ['user_id'] },
        { name: 'v.plan', tags: [] },
      ],
    },
    rows: [
      { 'v.uid': v(5), 'v.plan': v('pro') },
      { 'v.uid': v(5), 'v.plan': v('pro') },
      { 'v.uid': v(6), 'v.plan': v(false) },
    ],
    expected: [1, 2]
      .map((row): LookFixture['expected'][number] => ({
        row,
        topic: 'lookstream.track.v1',
        key: '5',
        message: {
          type: 'track',
          userId: '5',
          event: 'Plan Viewed',
          properties: { 'v.plan': 'pro' },
          integrations: { All: false, Segment: { connection: 'eu' } },
        },
      }))
      .concat([
        {
          row: 3,
          topic: 'lookstream.track.v1',
          key: '6',
          message: {
            type: 'track',
            userId: '6',
            event: 'Plan Viewed',
            properties: { 'v.plan': false },
            integrations: { All: false, Segment: { connection: 'eu' } },
          },
        },
      ]),
    rejected: [],
  },
  {
    action: 'segment_group',
    form: {},
    fields: {
      dimensions: [
        { name: 'co.id', tags: ['segment_group_id'] },
        { name: 'co.owner', tags: ['user_id'] },
        { name: 'co.seats', tags: [] },
      ],
    },
    rows: [
      { 'co.id': v('acme'), 'co.owner': v('u-9'), 'co.seats': v(40) },
      { 'co.id': v(null), 'co.owner': v('u-8'), 'co.seats': v(2) },
    ],
    expected: [
      {
        row: 1,
        topic: 'lookstream.group.v1',
        key: 'acme',
        message: { type: 'group', userId: 'u-9', groupId: 'acme', traits: { 'co.seats': 40 }, integrations: seg },
      },
    ],
    rejected: [{ row: 2, reason: 'row has no segment_group_id value' }],
  },
  {
    action: 'braze',
    form: { braze_segment: 'WINTER' },
    fields: {
      dimensions: [
        { name: 'p.ext', tags: ['braze_id'] },
        { name: 'p.first', tags: ['braze[first_name]'] },
        { name: 'p.score', tags: ['braze[score]'] },
        { name: 'p.note', tags: [] },
      ],
    },
    rows: [
      { 'p.ext': v('e-1'), 'p.first': v('Ana'), 'p.score': v(-2), 'p.note': v('ignored') },
      { 'p.ext': v(null), 'p.first': v('Bo'), 'p.score': v(1), 'p.note': v('') },
    ],
    expected: [
      {
        row: 1,
        topic: 'lookstream.identify.v1',
        key: 'e-1',
        message: {
          type: 'identify',
          userId: 'e-1',
          traits: { first_name: 'Ana', score: -2 },
          integrations: {
            All: false,
            Braze: {
              connection: 'default',
              identifierKey: 'external_id',
              exportLabel: 'WINTER',
              updateExistingOnly: true,
              nulls: 'skip',
            },
          },
        },
      },
    ],
    rejected: [{ row: 2, reason: 'row has no braze_id value (field p.ext)' }],
  },
  {
    action: 'heap',
    form: { heap_field: 'Users Email' },
    fields: {
      dimensions: [
        { name: 'users.email', label: 'Users Email' },
        { name: 'users.age', label: 'Users Age', is_numeric: true },
      ],
    },
    rows: [
      { 'users.email': v('h1@example.net'), 'users.age': v(0) },
      { 'users.email': v('h2@example.net'), 'users.age': v(null) },
    ],
    expected: [
      {
        row: 1,
        topic: 'lookstream.identify.v1',
        key: 'h1@example.net',
        message: {
          type: 'identify',
          userId: 'h1@example.net',
          traits: { 'Users Age': 0 },
          integrations: { All: false, Heap: { connection: 'default', propertyType: 'user', joinKey: 'Users Email' } },
        },
      },
      {
        row: 2,
        topic: 'lookstream.identify.v1',
        key: 'h2@example.net',
        message: {
          type: 'identify',
          userId: 'h2@example.net',
          traits: {},
          integrations: { All: false, Heap: { connection: 'default', propertyType: 'user', joinKey: 'Users Email' } },
        },
      },
    ],
    rejected: [],
  },
  {
    action: 'mparticle',
    form: { data_type: 'event_data', environment: 'production' },
    fields: {
      dimensions: [
        { name: 'u.cid', tags: ['mp_customer_id'] },
        { name: 'u.evt', tags: ['mp_event_name'] },
        { name: 'u.color', tags: ['mp_custom_attribute'] },
      ],
    },
    rows: [
      { 'u.cid': v('c-7'), 'u.evt': v('Renewed'), 'u.color': v('teal') },
      { 'u.cid': v(null), 'u.evt': v('Renewed'), 'u.color': v('red') },
    ],
    expected: [
      {
        row: 1,
        topic: 'lookstream.track.v1',
        key: 'c-7',
        message: {
          type: 'track',
          userId: 'c-7',
          event: 'Renewed',
          properties: { 'looker_u.color': 'teal' },
          context: { identities: { customer_id: 'c-7' } },
          integrations: {
            All: false,
            mParticle: { connection: 'default', environment: 'production', dataType: 'event_data', eventType: 'other' },
          },
        },
      },
    ],
    rejected: [{ row: 2, reason: 'row has no mParticle identity value' }],
  },
  {
    action: 'recurly_engage',
    form: {},
    fields: {
      dimensions: [
        { name: 'acc.uid', tags: ['user_id'] },
        { name: 'acc.plan', tags: [] },
      ],
      measures: [{ name: 'acc.mrr', tags: [] }],
    },
    rows: [
      { 'acc.uid': v(11), 'acc.plan': v('basic'), 'acc.mrr': v(9.5) },
      { 'acc.uid': v(12), 'acc.plan': v(null), 'acc.mrr': v(0) },
    ],
    expected: [
      {
        row: 1,
        topic: 'lookstream.identify.v1',
        key: '11',
        message: {
          type: 'identify',
          userId: '11',
          traits: { 'acc.plan': 'basic', 'acc.mrr': 9.5 },
          integrations: { All: false, 'Recurly Engage': { connection: 'default' } },
        },
      },
      {
        row: 2,
        topic: 'lookstream.identify.v1',
        key: '12',
        message: {
          type: 'identify',
          userId: '12',
          traits: { 'acc.plan': null, 'acc.mrr': 0 },
          integrations: { All: false, 'Recurly Engage': { connection: 'default' } },
        },
      },
    ],
    rejected: [],
  },
]

export type LookFormat = 'json_detail' | 'json_detail_lite_stream'

/** json_detail: pretty, with the other root keys (incl. a nested pivot `data`); lite: compact. */
export function renderLook(look: Pick<LookFixture, 'fields' | 'rows'>, format: LookFormat): string {
  if (format === 'json_detail_lite_stream') {
    return `{"ran_at":${JSON.stringify(RAN_AT)},"fields":${JSON.stringify(look.fields)},"data":[${look.rows
      .map((row) => JSON.stringify(row))
      .join(',')}]}`
  }
  return JSON.stringify(
    {
      id: 'query-1',
      ran_at: RAN_AT,
      sql: 'SELECT 1',
      pivots: [{ key: 'x', data: { row: 'not a row' }, is_total: false }],
      fields: { ...look.fields, table_calculations: [] },
      data: look.rows,
      has_totals: false,
    },
    null,
    2,
  )
}
