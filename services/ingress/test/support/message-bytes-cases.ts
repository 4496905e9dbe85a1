// Looks whose produced Kafka records are pinned byte for byte (message-bytes.integration.test.ts): one per mapping
// path of the actions that stream rows to a destination, with rows that exercise the ingress's serialization
// (a context of its own or none, escapes, non-BMP characters and a lone surrogate, 0/false/null, `__proto__`).

export interface MessageBytesCase {
  name: string
  action: string
  form: Record<string, string>
  /** The result's JSON (json_detail), rows included. */
  result: string
}

const RAN_AT = '2026-12-01T06:00:00Z'
// A lone surrogate (\ud800) is valid JSON text; JSON.stringify writes it escaped again.
const TRICKY = String.raw`"quote \" backslash \\ tab \t emoji \ud83d\ude00 lone \ud800 <\/script>"`

function look(dimensions: { name: string; tags: string[] }[], rows: string[]): string {
  return `{"ran_at":"${RAN_AT}","fields":{"dimensions":${JSON.stringify(dimensions)},"measures":[],"pivots":[]},"data":[${rows.join(',')}]}`
}

export const MESSAGE_BYTES_CASES: MessageBytesCase[] = [
  {
    name: 'segment_identify',
    action: 'segment_identify',
    form: {},
    result: look(
      [
        { name: 'u.id', tags: ['user_id'] },
        { name: 'u.email', tags: ['email'] },
        { name: 'u.plan', tags: [] },
        { name: '__proto__', tags: [] },
        { name: 'o.count', tags: [] },
      ],
      [
        `{"u.id":{"value":"u-1"},"u.email":{"value":"One@Example.com"},"u.plan":{"value":${TRICKY}},"__proto__":{"value":false},"o.count":{"value":0}}`,
        `{"u.id":{"value":null},"u.email":{"value":"two@example.com"},"u.plan":{"value":null},"o.count":{"value":12345678901234567890}}`,
        `{"u.id":{"value":42},"u.plan":{"value":"annual"}}`,
      ],
    ),
  },
  {
    name: 'segment_track',
    action: 'segment_track',
    form: { event: 'Plan Changed' },
    result: look(
      [
        { name: 'u.id', tags: ['user_id'] },
        { name: 'u.email', tags: ['email'] },
        { name: 'u.anon', tags: ['segment_anonymous_id'] },
        { name: 'u.plan', tags: [] },
      ],
      [
        `{"u.id":{"value":"u-1"},"u.email":{"value":"one@example.com"},"u.anon":{"value":null},"u.plan":{"value":${TRICKY}}}`,
        `{"u.id":{"value":null},"u.email":{"value":null},"u.anon":{"value":"anon-2"},"u.plan":{"value":"monthly"}}`,
        `{"u.id":{"value":"u-3"},"u.plan":{"value":1.5}}`,
      ],
    ),
  },
  {
    name: 'segment_group',
    action: 'segment_group',
    form: {},
    result: look(
      [
        { name: 'u.id', tags: ['user_id'] },
        { name: 'a.id', tags: ['segment_group_id'] },
        { name: 'a.name', tags: [] },
      ],
      [`{"u.id":{"value":"u-1"},"a.id":{"value":"acct-1"},"a.name":{"value":${TRICKY}}}`],
    ),
  },
  {
    name: 'braze',
    action: 'braze',
    form: { braze_key: 'braze_id', braze_segment: 'Spring "VIP"', braze_null_values: 'send' },
    result: look(
      [
        { name: 'u.id', tags: ['braze_id'] },
        { name: 'u.first', tags: ['braze[first_name]'] },
        { name: 'u.plan', tags: ['braze[plan]', 'braze[plan_copy]'] },
        { name: 'u.proto', tags: ['braze[__proto__]'] },
        { name: 'o.count', tags: ['braze[orders]'] },
        { name: 'u.ignored', tags: [] },
      ],
      [
        `{"u.id":{"value":"b-1"},"u.first":{"value":${TRICKY}},"u.plan":{"value":"annual"},"u.proto":{"value":1},"o.count":{"value":0},"u.ignored":{"value":"x"}}`,
        `{"u.id":{"value":2},"u.first":{"value":null},"u.plan":{"value":false},"o.count":{"value":7}}`,
        `{"u.id":{"value":{"nested":"id"}},"u.first":{"value":"x"}}`,
      ],
    ),
  },
  {
    name: 'mparticle user_data',
    action: 'mparticle',
    form: { data_type: 'user_data', environment: 'production', custom_event_type: 'other' },
    result: look(
      [
        { name: 'u.id', tags: ['mp_customer_id'] },
        { name: 'u.email', tags: ['mp_email'] },
        { name: 'u.other', tags: ['mp_other2'] },
        { name: 'u.plan', tags: ['mp_user_attribute'] },
        { name: '__proto__', tags: [] },
        { name: 'd.brand', tags: ['mp_device_info'] },
        { name: 'd.unknown', tags: ['mp_device_info'] },
      ],
      [
        `{"u.id":{"value":"c-1"},"u.email":{"value":"one@example.com"},"u.other":{"value":"o-1"},"u.plan":{"value":${TRICKY}},"__proto__":{"value":0},"d.brand":{"value":"Acme"},"d.unknown":{"value":"x"}}`,
        `{"u.id":{"value":null},"u.email":{"value":"two@example.com"},"u.other":{"value":"o-2"},"u.plan":{"value":null},"d.brand":{"value":null}}`,
        `{"u.id":{"value":" "},"u.other":{"value":3},"u.plan":{"value":"monthly"}}`,
        `{"u.id":{"value":""},"u.plan":{"value":"no identity"}}`,
      ],
    ),
  },
  {
    name: 'mparticle event_data',
    action: 'mparticle',
    form: { data_type: 'event_data', environment: 'staging', custom_event_type: 'navigation' },
    result: look(
      [
        { name: 'u.email', tags: ['mp_email'] },
        { name: 'u.id', tags: ['mp_customer_id'] },
        { name: 'e.name', tags: ['mp_event_name'] },
        { name: 'e.id', tags: ['mp_event_id'] },
        { name: 'e.type', tags: ['mp_custom_event_type'] },
        { name: 'e.amount', tags: ['mp_custom_attribute'] },
        { name: 'u.plan', tags: ['mp_user_attribute'] },
        { name: 'd.platform', tags: ['mp_device_info'] },
        { name: 'e.untagged', tags: [] },
      ],
      [
        `{"u.email":{"value":"one@example.com"},"u.id":{"value":"c-1"},"e.name":{"value":${TRICKY}},"e.id":{"value":11},"e.type":{"value":"search"},"e.amount":{"value":9.99},"u.plan":{"value":"annual"},"d.platform":{"value":"iOS"},"e.untagged":{"value":"x"}}`,
        `{"u.email":{"value":"two@example.com"},"u.id":{"value":null},"e.name":{"value":null},"e.id":{"value":null},"e.amount":{"value":0},"u.plan":{"value":null}}`,
        `{"u.email":{"value":"three@example.com"}}`,
      ],
    ),
  },
]
