import { describe, expect, it } from 'vitest'
import { findAction, type Action, type MapResult, type SendContext } from '../src/actions/index.ts'
import { anonymousIdForEmail } from '../src/actions/anonymous-id.ts'
import { type JsonDetailFields } from '../src/looker/json-detail-reader.ts'
import { lookerVersionFrom } from '../src/looker/looker-version.ts'

function action(name: string): Action {
  const found = findAction(name)
  if (!found) throw new Error(`no action ${name}`)
  return found
}

function context(form: Record<string, string> = {}, hidden: string[] = []): SendContext {
  return { connection: 'default', form, hiddenFields: new Set(hidden) }
}

function mapAll(name: string, fields: JsonDetailFields, rows: unknown[], ctx = context()): MapResult[] {
  const prepared = action(name).prepare(fields, ctx)
  if (!prepared.ok) throw new Error(prepared.reason)
  return rows.map((row) => prepared.mapRow(row))
}

const cell = (value: unknown) => ({ value })

describe('supported formats by Looker version', () => {
  it('offers the lite stream from 6.2.0 on, json_detail before and without a version', () => {
    for (const name of ['segment_identify', 'braze', 'heap', 'mparticle', 'recurly_engage']) {
      const formats = action(name).supportedFormats
      expect(formats(lookerVersionFrom('LookerOutgoingWebhook/7.3.00004561'))).toEqual(['json_detail_lite_stream'])
      expect(formats(lookerVersionFrom('LookerOutgoingWebhook/6.2.0'))).toEqual(['json_detail_lite_stream'])
      expect(formats(lookerVersionFrom('LookerOutgoingWebhook/6.0.12'))).toEqual(['json_detail'])
      expect(formats(lookerVersionFrom(undefined))).toEqual(['json_detail'])
      expect(formats(lookerVersionFrom('curl/8.0'))).toEqual(['json_detail'])
    }
  })

  it('parses loose versions', () => {
    expect(lookerVersionFrom('LookerOutgoingWebhook/7.3.00004561')).toEqual([7, 3, 4561])
    expect(lookerVersionFrom('LookerOutgoingWebhook/24')).toEqual([24, 0, 0])
  })
})

describe('segment actions', () => {
  const fields: JsonDetailFields = {
    dimensions: [
      { name: 'acct.mail', tags: ['email'] },
      { name: 'acct.uid', tags: ['user_id'] },
      { name: 'acct.anon', tags: ['segment_anonymous_id'] },
      { name: 'acct.plan', tags: [] },
      { name: 'acct.secret_note', tags: [] },
    ],
    measures: [{ name: 'acct.logins', tags: [] }],
  }
  const row = {
    'acct.mail': cell('ada@example.org'),
    'acct.uid': cell(101),
    'acct.anon': cell('anon-9'),
    'acct.plan': cell(null),
    'acct.secret_note': cell('hidden'),
    'acct.logins': cell(0),
  }

  it('identify: userId from user_id, anonymousId from its tag, traits by field name with 0 and null kept', () => {
    const [result] = mapAll('segment_identify', fields, [row], context({}, ['acct.secret_note']))
    expect(result).toEqual({
      ok: true,
      messages: [
        {
          type: 'identify',
          userId: '101',
          anonymousId: 'anon-9',
          traits: { 'acct.plan': null, 'acct.logins': 0, email: 'ada@example.org' },
          integrations: { All: false, Segment: { connection: 'default' } },
        },
      ],
    })
  })

  it('identify: an email-only row gets a deterministic anonymousId, a row with no identity is rejected', () => {
    const emailOnly: JsonDetailFields = { dimensions: [{ name: 'p.mail', tags: ['email'] }, { name: 'p.x' }] }
    const results = mapAll('segment_identify', emailOnly, [
      { 'p.mail': cell('Bo@Example.org'), 'p.x': cell(false) },
      { 'p.mail': cell(null), 'p.x': cell(1) },
    ])
    expect(results[0]).toEqual({
      ok: true,
      messages: [
        {
          type: 'identify',
          anonymousId: anonymousIdForEmail('bo@example.org'),
          traits: { 'p.x': false, email: 'Bo@Example.org' },
          integrations: { All: false, Segment: { connection: 'default' } },
        },
      ],
    })
    expect(anonymousIdForEmail('bo@example.org')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-/)
    expect(results[1]).toEqual({ ok: false, reason: 'row has no user_id, segment_anonymous_id or email value' })
  })

  it('identify: pivoted cells become an object keyed by pivot value', () => {
    const pivoted: JsonDetailFields = {
      dimensions: [{ name: 'u.id', tags: ['user_id'] }],
      measures: [{ name: 'o.count' }],
    }
    const [result] = mapAll('segment_identify', pivoted, [
      { 'u.id': cell('u1'), 'o.count': { '2024-01': cell(3), '2024-02': cell(0) } },
    ])
    expect(result?.ok && result.messages[0]?.traits).toEqual({ 'o.count': { '2024-01': 3, '2024-02': 0 } })
  })

  it('identify: a pivot keyed "value" is read as a pivot, every pivot value kept', () => {
    const pivoted: JsonDetailFields = {
      dimensions: [{ name: 'u.id', tags: ['user_id'] }],
      measures: [{ name: 'o.count' }],
    }
    const [result] = mapAll('segment_identify', pivoted, [
      { 'u.id': cell('u1'), 'o.count': { value: cell(3), shipped: cell(5), $$$_row_total_$$$: cell(8) } },
      { 'u.id': cell('u2'), 'o.count': { value: { value: 4 }, rendered: '4' } },
    ])
    expect(result?.ok && result.messages[0]?.traits).toEqual({
      'o.count': { value: 3, shipped: 5, $$$_row_total_$$$: 8 },
    })
    const [, plain] = mapAll('segment_identify', pivoted, [
      { 'u.id': cell('u1'), 'o.count': cell(1) },
      { 'u.id': cell('u2'), 'o.count': { value: { value: 4 }, rendered: '4' } },
    ])
    // A cell whose value is an object, beside a rendered text: a plain cell.
    expect(plain?.ok && plain.messages[0]?.traits).toEqual({ 'o.count': { value: 4 } })
    // A lone "value" holding an object is a plain cell: all of the object is kept.
    const [, lone] = mapAll('segment_identify', pivoted, [
      { 'u.id': cell('u1'), 'o.count': cell(1) },
      { 'u.id': cell('u2'), 'o.count': { value: { value: 4, other: 5 } } },
    ])
    expect(lone?.ok && lone.messages[0]?.traits).toEqual({ 'o.count': { value: 4, other: 5 } })
  })

  it('identify: fails the send when no identity tag is present', () => {
    const prepared = action('segment_identify').prepare({ dimensions: [{ name: 'a', tags: [] }] }, context())
    expect(prepared).toEqual({
      ok: false,
      reason: 'Query requires a field tagged email or user_id or segment_anonymous_id.',
    })
  })

  it('track: event from the form, properties without ids, email in context.traits', () => {
    const [result] = mapAll('segment_track', fields, [row], context({ event: 'Became VIP' }, ['acct.secret_note']))
    expect(result).toEqual({
      ok: true,
      messages: [
        {
          type: 'track',
          userId: '101',
          anonymousId: 'anon-9',
          event: 'Became VIP',
          properties: { 'acct.plan': null, 'acct.logins': 0 },
          context: { traits: { email: 'ada@example.org' } },
          integrations: { All: false, Segment: { connection: 'default' } },
        },
      ],
    })
    expect(action('segment_track').validateForm?.({})).toEqual({ event: 'Event name is required.' })
  })

  it('group: needs a segment_group_id field and value, and a user identity', () => {
    const groupFields: JsonDetailFields = {
      dimensions: [
        { name: 'g.id', tags: ['segment_group_id'] },
        { name: 'g.uid', tags: ['user_id'] },
        { name: 'g.size' },
      ],
    }
    const results = mapAll('segment_group', groupFields, [
      { 'g.id': cell(77), 'g.uid': cell('u1'), 'g.size': cell(12) },
      { 'g.id': cell(null), 'g.uid': cell('u1'), 'g.size': cell(12) },
      { 'g.id': cell(78), 'g.uid': cell(null), 'g.size': cell(12) },
    ])
    expect(results[0]).toEqual({
      ok: true,
      messages: [
        {
          type: 'group',
          userId: 'u1',
          groupId: '77',
          traits: { 'g.size': 12 },
          integrations: { All: false, Segment: { connection: 'default' } },
        },
      ],
    })
    expect(results[1]).toEqual({ ok: false, reason: 'row has no segment_group_id value' })
    expect(results[2]).toEqual({ ok: false, reason: 'row has no user_id, segment_anonymous_id or email value' })
    expect(action('segment_group').prepare({ dimensions: [{ name: 'x', tags: ['email'] }] }, context())).toEqual({
      ok: false,
      reason: 'Query requires a field tagged segment_group_id.',
    })
    expect(action('segment_group').requiredFields).toEqual([
      { tag: 'segment_group_id' },
      { any_tag: ['email', 'user_id', 'segment_anonymous_id'] },
    ])
  })

  it('rejects an identity that is an object', () => {
    const [result] = mapAll('segment_identify', fields, [{ ...row, 'acct.uid': cell({ a: 1 }) }])
    expect(result).toEqual({ ok: false, reason: 'user_id field acct.uid holds an object' })
  })
})

describe('braze', () => {
  const fields: JsonDetailFields = {
    dimensions: [
      { name: 'c.ext', tags: ['braze_id'] },
      { name: 'c.first', tags: ['braze[first_name]', 'other'] },
      { name: 'c.tier', tags: ['braze[Loyalty Tier]'] },
      { name: 'c.untagged', tags: [] },
    ],
  }
  const ctx = context({ braze_key: 'braze_id', braze_segment: 'SPRING' })

  it('maps braze[attr] tags, ignores untagged columns, carries options in integrations.Braze', () => {
    const [result] = mapAll(
      'braze',
      fields,
      [{ 'c.ext': cell('b-1'), 'c.first': cell('Ada'), 'c.tier': cell(0), 'c.untagged': cell('x') }],
      ctx,
    )
    expect(result).toEqual({
      ok: true,
      messages: [
        {
          type: 'identify',
          userId: 'b-1',
          traits: { first_name: 'Ada', 'Loyalty Tier': 0 },
          integrations: {
            All: false,
            Braze: {
              connection: 'default',
              identifierKey: 'braze_id',
              exportLabel: 'SPRING',
              updateExistingOnly: true,
              nulls: 'skip',
            },
          },
        },
      ],
    })
  })

  it('rejects a row without an identifier and fails a send without the braze_id tag', () => {
    const [result] = mapAll('braze', fields, [{ 'c.ext': cell(''), 'c.first': cell('x') }], ctx)
    expect(result).toEqual({ ok: false, reason: 'row has no braze_id value (field c.ext)' })
    expect(action('braze').prepare({ dimensions: [{ name: 'x' }] }, ctx)).toEqual({
      ok: false,
      reason: 'Query requires a field tagged braze_id.',
    })
  })

  it('fails a send where two columns are tagged with the same attribute (they would overwrite each other)', () => {
    const twice: JsonDetailFields = {
      dimensions: [
        { name: 'c.ext', tags: ['braze_id'] },
        { name: 'users.plan', tags: ['braze[plan]'] },
        { name: 'orders.plan', tags: ['braze[plan]'] },
      ],
    }
    expect(action('braze').prepare(twice, ctx)).toEqual({
      ok: false,
      reason:
        'Columns users.plan and orders.plan are both tagged braze[plan]: a Braze attribute holds one value per user; remove one of the tags.',
    })
  })

  it('carries the form choices: create users, and send nulls so Braze removes the attribute', () => {
    const choices = context({
      braze_key: 'external_id',
      braze_segment: 'SPRING',
      braze_update_existing_only: 'no',
      braze_null_values: 'send',
    })
    const [result] = mapAll(
      'braze',
      fields,
      [{ 'c.ext': cell('e-1'), 'c.first': cell(null), 'c.tier': cell(2) }],
      choices,
    )
    expect(result).toMatchObject({
      ok: true,
      messages: [
        {
          traits: { first_name: null, 'Loyalty Tier': 2 },
          integrations: { Braze: { identifierKey: 'external_id', updateExistingOnly: false, nulls: 'send' } },
        },
      ],
    })
    expect(action('braze').validateForm!({ braze_key: 'external_id', braze_null_values: 'drop' })).toEqual({
      braze_null_values: 'Empty Values must be skip or send.',
    })
    expect(action('braze').validateForm!({ braze_key: 'external_id', braze_update_existing_only: 'maybe' })).toEqual({
      braze_update_existing_only: 'Update Existing Users Only must be yes or no.',
    })
    expect(action('braze').validateForm!({ braze_key: 'external_id', braze_segment: 'x'.repeat(256) })).toEqual({
      braze_segment: 'Export Label must be at most 255 characters (a Braze array value).',
    })
  })

  it('refuses a pivoted query with the reason, and a pivoted cell row by row', () => {
    const pivoted = action('braze').prepare({ ...fields, pivots: [{ name: 'o.month' }] }, ctx)
    expect(pivoted.ok).toBe(false)
    expect(!pivoted.ok && pivoted.reason).toMatch(/^Braze does not support pivoted queries: /)
    const [row] = mapAll('braze', fields, [{ 'c.ext': cell('b-1'), 'c.tier': { '2026-01': cell(1) } }], ctx)
    expect(row?.ok).toBe(false)
    expect(row !== undefined && !row.ok && row.reason).toMatch(/^field c.tier is pivoted: Braze does not support/)
  })
})

describe('heap', () => {
  const fields: JsonDetailFields = {
    dimensions: [
      { name: 'u.email', label: 'Users Email' },
      { name: 'u.balance', label: 'Users Balance', is_numeric: true },
      { name: 'u.vip', label: 'Users VIP' },
      { name: 'u.bio', label: 'Users Bio' },
      { name: 'u.none', label: 'Users None' },
    ],
    measures: [{ name: 'o.n', label: 'Orders N' }],
  }
  const row = {
    'u.email': cell('h@example.org'),
    'u.balance': cell(-12.5),
    'u.vip': cell(false),
    'u.bio': cell('b'.repeat(1023)),
    'u.none': cell(null),
    'o.n': { a: cell(0), b: cell(2) },
  }

  it('user properties keyed by label: values as Looker gives them (0, false, minus kept), pivots flattened, null left out', () => {
    const [result] = mapAll('heap', fields, [row], context({ property_type: 'user', heap_field: 'Users Email' }))
    expect(result).toEqual({
      ok: true,
      messages: [
        {
          type: 'identify',
          userId: 'h@example.org',
          traits: {
            'Users Balance': -12.5,
            'Users VIP': false,
            'Users Bio': 'b'.repeat(1023),
            'Orders N | a': 0,
            'Orders N | b': 2,
          },
          integrations: { All: false, Heap: { connection: 'default', propertyType: 'user', joinKey: 'Users Email' } },
        },
      ],
    })
  })

  it('account properties become a group message keyed by the account id', () => {
    const [result] = mapAll('heap', fields, [row], context({ property_type: 'account', heap_field: 'u.email' }))
    expect(result?.ok && result.messages[0]).toMatchObject({
      type: 'group',
      groupId: 'h@example.org',
      anonymousId: 'heap-account:h@example.org',
      integrations: { Heap: { propertyType: 'account', joinKey: 'Users Email' } },
    })
  })

  it('rejects a row holding a string of 1,024 characters, naming the column; the truncate choice passes it on', () => {
    const long = { ...row, 'u.bio': cell('b'.repeat(1024)) }
    const ctx = context({ property_type: 'user', heap_field: 'Users Email', long_values: 'reject' })
    expect(mapAll('heap', fields, [long], ctx)[0]).toEqual({
      ok: false,
      reason: 'column Users Bio holds 1024 characters; Heap takes fewer than 1024 (or send with Long Values: truncate)',
    })
    const truncating = context({ property_type: 'user', heap_field: 'Users Email', long_values: 'truncate' })
    const [result] = mapAll('heap', fields, [long], truncating)
    expect(result?.ok && result.messages[0]).toMatchObject({
      traits: { 'Users Bio': 'b'.repeat(1024) },
      integrations: { Heap: { longValues: 'truncate' } },
    })
  })

  it('names the Environment ID in the message when given, and checks it is digits', () => {
    const ctx = context({ property_type: 'user', heap_field: 'Users Email', env_id: '4242' })
    const [result] = mapAll('heap', fields, [row], ctx)
    expect(result?.ok && result.messages[0]?.integrations).toEqual({
      All: false,
      Heap: { connection: 'default', propertyType: 'user', joinKey: 'Users Email', envId: '4242' },
    })
    const validate = action('heap').validateForm!
    expect(validate({ property_type: 'user', heap_field: 'x', long_values: 'reject', env_id: 'abc' })).toEqual({
      env_id: 'Heap environment ID is invalid: abc (digits only).',
    })
    expect(validate({ property_type: 'user', heap_field: 'x', long_values: 'reject' })).toEqual({})
    expect(validate({ property_type: 'users', heap_field: 'x', long_values: 'reject' })).toEqual({
      property_type: 'Property Type must be user or account.',
    })
  })

  it('fails the send when a column would become a user property named id, or two columns one property', () => {
    const withId: JsonDetailFields = { dimensions: [...fields.dimensions!, { name: 'u.id', label: 'ID' }] }
    expect(action('heap').prepare(withId, context({ property_type: 'user', heap_field: 'Users Email' }))).toEqual({
      ok: false,
      reason:
        'Column "ID" would become a Heap user property named "ID", which Heap reserves (any casing of id): hide the column or change its label.',
    })
    expect(action('heap').prepare(withId, context({ property_type: 'account', heap_field: 'Users Email' })).ok).toBe(
      true,
    )
    const clash: JsonDetailFields = {
      dimensions: [
        { name: 'u.id', label: 'User' },
        { name: 'u.e1', label: 'Email' },
        { name: 'u.e2', label: 'EMAIL' },
      ],
    }
    expect(action('heap').prepare(clash, context({ property_type: 'user', heap_field: 'User' }))).toEqual({
      ok: false,
      reason: 'Columns "Email" and "EMAIL" would both become Heap property "email": hide one or change its label.',
    })
  })

  it('rejects an empty join key and fails when the join-key column is missing', () => {
    const ctx = context({ property_type: 'user', heap_field: 'Users Email' })
    expect(mapAll('heap', fields, [{ ...row, 'u.email': cell(null) }], ctx)[0]).toEqual({
      ok: false,
      reason: 'join key Users Email is empty',
    })
    expect(action('heap').prepare(fields, context({ property_type: 'user', heap_field: 'Email' }))).toEqual({
      ok: false,
      reason: 'Heap field (Email) is missing in the query result.',
    })
  })
})

describe('mparticle', () => {
  const fields: JsonDetailFields = {
    dimensions: [
      { name: 'user.cid', tags: ['mp_customer_id'] },
      { name: 'user.mail', tags: ['mp_email'] },
      { name: 'user.alt', tags: ['mp_other2'] },
      { name: 'user.brand', tags: ['mp_device_info'] },
      { name: 'user.fav', tags: ['mp_custom_attribute'] },
      { name: 'user.tier', tags: ['mp_user_attribute'] },
      { name: 'user.evt', tags: ['mp_event_name'] },
      { name: 'user.sess', tags: ['mp_session_id'] },
      { name: 'user.plain', tags: [] },
    ],
  }
  const row = {
    'user.cid': cell('c-1'),
    'user.mail': cell('m@example.org'),
    'user.alt': cell(5),
    'user.brand': cell('acme'),
    'user.fav': cell('tea'),
    'user.tier': cell(0),
    'user.evt': cell('Signed Up'),
    'user.sess': cell(123),
    'user.plain': cell(null),
  }

  it('refuses a pivoted query before any row (an attribute holds one value, a pivot many)', () => {
    expect(action('mparticle').prepare({ ...fields, pivots: [{ name: 'o.status' }] }, context())).toEqual({
      ok: false,
      reason:
        'mParticle does not support pivoted queries: a user or custom attribute holds one value, a pivoted column holds one per pivot value. Remove the pivot from the Look and send again.',
    })
  })

  it('user_data: identities renamed, every non-identity field but the event name as looker_ attribute', () => {
    const [result] = mapAll('mparticle', fields, [row], context({ data_type: 'user_data', environment: 'staging' }))
    expect(result).toEqual({
      ok: true,
      messages: [
        {
          type: 'identify',
          userId: 'c-1',
          traits: {
            'looker_user.fav': 'tea',
            'looker_user.tier': 0,
            'looker_user.sess': 123,
            'looker_user.plain': null,
          },
          context: {
            identities: { customer_id: 'c-1', email: 'm@example.org', other_id_2: '5' },
            device: { brand: 'acme' },
          },
          integrations: {
            All: false,
            mParticle: { connection: 'default', environment: 'development', dataType: 'user_data', eventType: 'other' },
          },
        },
      ],
    })
  })

  it('event_data: event name from its tag, custom attributes as properties, user attributes in context.traits', () => {
    const ctx = context({ data_type: 'event_data', environment: 'production', custom_event_type: 'transaction' })
    const [result] = mapAll('mparticle', fields, [{ ...row, 'user.cid': cell(null) }], ctx)
    expect(result).toEqual({
      ok: true,
      messages: [
        {
          type: 'track',
          anonymousId: 'email:m@example.org',
          event: 'Signed Up',
          properties: { 'looker_user.fav': 'tea' },
          context: {
            identities: { email: 'm@example.org', other_id_2: '5' },
            device: { brand: 'acme' },
            traits: { 'looker_user.tier': 0 },
            mParticle: { session_id: 123 },
          },
          integrations: {
            All: false,
            mParticle: {
              connection: 'default',
              environment: 'production',
              dataType: 'event_data',
              eventType: 'transaction',
            },
          },
        },
      ],
    })
  })

  it('fails without an identity tag or with an unknown device_info name; rejects rows without identity values', () => {
    const ctx = context({ data_type: 'user_data' })
    expect(action('mparticle').prepare({ dimensions: [{ name: 'a.b', tags: ['x'] }] }, ctx)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('Query requires at least one field tagged with an mParticle identity') as unknown,
    })
    const skipping = action('mparticle').prepare(
      {
        dimensions: [
          { name: 'u.id', tags: ['mp_email'] },
          { name: 'u.shoe', tags: ['mp_device_info'] },
          { name: 'u.brand', tags: ['mp_device_info'] },
        ],
      },
      ctx,
    )
    expect(skipping).toMatchObject({
      ok: true,
      notes: ["not sent: u.shoe (tagged mp_device_info, but not one of mParticle's predefined device_info fields)."],
    })
    if (!skipping.ok) throw new Error('prepared')
    expect(
      skipping.mapRow({ 'u.id': { value: 'a@b.c' }, 'u.shoe': { value: '44' }, 'u.brand': { value: 'Acme' } }),
    ).toMatchObject({
      ok: true,
      messages: [{ context: { identities: { email: 'a@b.c' }, device: { brand: 'Acme' } } }],
    })
    const [result] = mapAll(
      'mparticle',
      fields,
      [{ ...row, 'user.cid': cell(null), 'user.mail': cell(''), 'user.alt': cell(null) }],
      ctx,
    )
    expect(result).toEqual({ ok: false, reason: 'row has no mParticle identity value' })
  })
})

describe('recurly_engage', () => {
  const integrations = { All: false, 'Recurly Engage': { connection: 'default' } }

  it('takes the field tagged user_id as the customer id, the other columns as traits by label in order, null kept', () => {
    const fields: JsonDetailFields = {
      dimensions: [
        { name: 'r.plan', label: 'Users Plan' },
        { name: 'r.uid', tags: ['user_id'], label: 'Users ID' },
      ],
      measures: [{ name: 'r.mrr', label: 'Users MRR' }, { name: 'r.extra' }],
    }
    const [result] = mapAll('recurly_engage', fields, [{ 'r.plan': cell(null), 'r.uid': cell(42), 'r.mrr': cell(-1) }])
    expect(result).toEqual({
      ok: true,
      messages: [
        {
          type: 'identify',
          userId: '42',
          traits: { 'Users Plan': null, 'Users MRR': -1, 'r.extra': null },
          integrations,
        },
      ],
    })
    expect(Object.keys((result as unknown as { messages: [{ traits: object }] }).messages[0].traits)).toEqual([
      'Users Plan',
      'Users MRR',
      'r.extra',
    ])
  })

  it('without a user_id tag takes the first column as the customer id', () => {
    const fields: JsonDetailFields = {
      dimensions: [
        { name: 'u.email', label: 'Users Email' },
        { name: 'u.plan', label: 'Users Plan' },
      ],
    }
    const [result] = mapAll('recurly_engage', fields, [{ 'u.email': cell('a@b.c'), 'u.plan': cell('gold, "vip"') }])
    expect(result).toEqual({
      ok: true,
      messages: [{ type: 'identify', userId: 'a@b.c', traits: { 'Users Plan': 'gold, "vip"' }, integrations }],
    })
    expect(action('recurly_engage').requiredFields).toEqual([])
  })

  it('refuses a Look whose columns cannot become a CSV header, with the reason', () => {
    const refuse = (fields: JsonDetailFields) => action('recurly_engage').prepare(fields, context())
    expect(refuse({ dimensions: [] })).toEqual({ ok: false, reason: 'The Look has no columns.' })
    expect(refuse({ dimensions: [{ name: 'a' }, { name: 'b', label: 'X' }, { name: 'c', label: 'X' }] })).toEqual({
      ok: false,
      reason: 'Columns b and c are both labelled "X": rename one.',
    })
    expect(refuse({ dimensions: [{ name: 'a' }, { name: 'b', label: 'user_id' }] })).toEqual({
      ok: false,
      reason: 'Column b is labelled "user_id", the name of the customer id column (a): rename it.',
    })
    expect(refuse({ dimensions: [{ name: 'a' }, { name: 'b', label: '2024' }] })).toEqual({
      ok: false,
      reason: 'Column b is labelled "2024": give it a label that is not a number.',
    })
    expect(refuse({ dimensions: [{ name: 'a' }], pivots: [{ name: 'p' }] })).toMatchObject({ ok: false })
  })

  it('rejects rows without a customer id or with a value a CSV cell cannot hold', () => {
    const fields: JsonDetailFields = { dimensions: [{ name: 'a' }, { name: 'b', label: 'B' }] }
    const results = mapAll('recurly_engage', fields, [
      { a: cell(null), b: cell(1) },
      { a: cell('u1'), b: cell({ x: 1 }) },
      { a: cell('u2'), b: cell([1]) },
    ])
    expect(results).toEqual([
      { ok: false, reason: 'row has no user_id value (field a)' },
      { ok: false, reason: 'column b holds a object; a CSV cell takes text, numbers and booleans' },
      { ok: false, reason: 'column b holds a array; a CSV cell takes text, numbers and booleans' },
    ])
  })
})
