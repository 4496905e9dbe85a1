import { connectionsEnv } from '@lookstream/destination'
import { Type, type Static } from 'typebox'

/** Heap's server-side API hosts: the US data centre and the EU one. */
export const HEAP_API_HOSTS = ['heapanalytics.com', 'c.eu.heap-api.com'] as const
export const HEAP_REGION_URLS = { us: 'https://heapanalytics.com', eu: 'https://c.eu.heap-api.com' } as const

const ApiUrl = Type.String({ pattern: '^https?://[^\\s/]+(/.*)?$', maxLength: 512 })
/** A Heap environment id (the `app_id` of the API): digits only. */
export const EnvironmentId = Type.String({ pattern: '^[0-9]{1,32}$' })
const ItemsPerMinute = Type.Number({ minimum: 1, maximum: 100_000_000 })

export const HeapConnectionConfig = Type.Object(
  {
    appId: EnvironmentId,
    /** Environments a send may name besides `appId`; any other is refused. */
    allowedAppIds: Type.Optional(Type.Array(EnvironmentId, { maxItems: 100 })),
    region: Type.Optional(Type.Union([Type.Literal('us'), Type.Literal('eu')])),
    apiUrl: Type.Optional(ApiUrl),
    itemsPerMinute: Type.Optional(ItemsPerMinute),
    identityItemsPerMinute: Type.Optional(ItemsPerMinute),
  },
  { additionalProperties: false },
)
export type HeapConnectionConfig = Static<typeof HeapConnectionConfig>

export const HeapConfig = Type.Object({
  HEAP_APP_ID: Type.Optional(
    Type.String({ ...EnvironmentId, description: 'environment id (app_id) of the `default` connection' }),
  ),
  HEAP_ALLOWED_APP_IDS: Type.Optional(
    Type.String({
      pattern: '^[0-9]{1,32}(,[0-9]{1,32})*$',
      description: 'comma-separated environment ids a send on `default` may name besides HEAP_APP_ID',
    }),
  ),
  HEAP_API_URL: Type.String({
    ...ApiUrl,
    default: HEAP_REGION_URLS.us,
    description: `API base URL of the \`default\` connection (EU: ${HEAP_REGION_URLS.eu})`,
  }),
  ...connectionsEnv(
    'HEAP',
    HeapConnectionConfig,
    '{"eu": {"appId": "123", "region": "eu", "allowedAppIds": ["456"], "itemsPerMinute": 15000}}',
  ),
  HEAP_ITEMS_PER_MINUTE: Type.Number({
    ...ItemsPerMinute,
    default: 15_000,
    description: 'users/accounts per minute per environment, shared by all replicas (Heap allows 15,000)',
  }),
  HEAP_IDENTITY_ITEMS_PER_MINUTE: Type.Number({
    ...ItemsPerMinute,
    default: 1000,
    description: 'updates per minute of one identity (Heap allows 1,000): caps requests per minute per environment',
  }),
  HEAP_ALLOWED_HOSTS: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'comma-separated hosts requests may go to (default: Heap API hosts + the HEAP_API_URL host)',
    }),
  ),
})
export type HeapConfig = Static<typeof HeapConfig>
