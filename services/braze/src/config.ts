import { connectionsEnv } from '@lookstream/destination'
import { Type, type Static } from 'typebox'

/**
 * Braze's REST hosts, one per instance (US-01…US-08 are iad-01…iad-08). A REST endpoint on any other host is
 * refused unless BRAZE_ALLOWED_HOSTS names it.
 */
export const BRAZE_REST_HOSTS = [
  ...Array.from({ length: 8 }, (_, i) => `rest.iad-0${i + 1}.braze.com`),
  'rest.us-09.braze.com',
  'rest.us-10.braze.com',
  'rest.fra-01.braze.eu',
  'rest.fra-02.braze.eu',
  'rest.au-01.braze.com',
  'rest.id-01.braze.com',
  'rest.jp-01.braze.com',
] as const

/** A base URL: scheme, host, optional port, nothing else (no path, query or credentials). */
const RestEndpoint = Type.String({ pattern: '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$', maxLength: 256 })
const ApiKey = Type.String({ minLength: 1, maxLength: 256 })

export const BrazeConnectionConfig = Type.Object(
  {
    apiKey: ApiKey,
    restEndpoint: RestEndpoint,
    /**
     * Connections naming the same workspace share one rate limit. Connections with the same key and endpoint
     * always do; give this when two keys belong to one workspace.
     */
    workspace: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' })),
    /** Requests per BRAZE_RATE_LIMIT_WINDOW_SECONDS for this workspace (default BRAZE_RATE_LIMIT_REQUESTS). */
    rateLimitRequests: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    /**
     * Send through `POST /users/track/bulk` (a Braze beta: the key needs the users.track.bulk permission): up to
     * 1,000 objects and 2 MB per request, on a rate budget of its own. Bulk updates do not trigger action-based
     * campaigns or Canvases at Braze.
     */
    bulk: Type.Optional(Type.Boolean()),
    /**
     * Attributes objects per request: at most 75, or 1,000 with bulk (default BRAZE_MAX_OBJECTS_PER_REQUEST; with
     * bulk, BRAZE_BULK_MAX_OBJECTS_PER_REQUEST).
     */
    maxObjectsPerRequest: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** With bulk: /users/track/bulk requests per second for the workspace (default BRAZE_BULK_REQUESTS_PER_SECOND). */
    bulkRequestsPerSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100_000 })),
    /** Values per array attribute (default BRAZE_MAX_ARRAY_LENGTH). */
    maxArrayLength: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
)
export type BrazeConnectionConfig = Static<typeof BrazeConnectionConfig>

export const BrazeConfig = Type.Object({
  BRAZE_API_KEY: Type.Optional({
    ...ApiKey,
    description: 'REST API key of the `default` connection (needs the users.track permission)',
  }),
  BRAZE_REST_ENDPOINT: Type.Optional({
    ...RestEndpoint,
    description:
      'REST endpoint of the `default` connection, e.g. https://rest.iad-01.braze.com (see the instance list)',
  }),
  BRAZE_WORKSPACE: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
      description: 'rate-limit scope of the `default` connection (connections naming one workspace share its limit)',
    }),
  ),
  ...connectionsEnv(
    'BRAZE',
    BrazeConnectionConfig,
    '{"eu": {"apiKey": "…", "restEndpoint": "https://rest.fra-01.braze.eu", "workspace": "eu-main"}}',
  ),
  BRAZE_RATE_LIMIT_REQUESTS: Type.Integer({
    default: 3000,
    minimum: 1,
    maximum: 1_000_000,
    description: '/users/track requests per window per workspace, shared by all replicas (Braze: 3,000 per 3 s)',
  }),
  BRAZE_RATE_LIMIT_WINDOW_SECONDS: Type.Number({
    default: 3,
    exclusiveMinimum: 0,
    maximum: 3600,
    description: 'the window of BRAZE_RATE_LIMIT_REQUESTS',
  }),
  BRAZE_MAX_OBJECTS_PER_REQUEST: Type.Integer({
    default: 75,
    minimum: 1,
    maximum: 75,
    description: 'attributes objects per request (Braze: 75 combined; 50 on some MAU contracts)',
  }),
  BRAZE_BULK: Type.Boolean({
    default: false,
    description:
      'the `default` connection sends through POST /users/track/bulk (Braze beta; the key needs users.track.bulk): 1,000 objects and 2 MB per request; bulk updates do not trigger action-based campaigns or Canvases',
  }),
  BRAZE_BULK_MAX_OBJECTS_PER_REQUEST: Type.Integer({
    default: 1000,
    minimum: 1,
    maximum: 1000,
    description: 'objects per /users/track/bulk request (Braze: 1,000 combined, depending on the account)',
  }),
  BRAZE_BULK_REQUESTS_PER_SECOND: Type.Number({
    default: 50,
    exclusiveMinimum: 0,
    maximum: 100_000,
    description: '/users/track/bulk requests per second per workspace, shared by all replicas (Braze: 50)',
  }),
  BRAZE_MAX_ARRAY_LENGTH: Type.Integer({
    default: 25,
    minimum: 1,
    maximum: 100,
    description: "values per array attribute (the workspace's cap: Braze truncates longer arrays silently)",
  }),
  BRAZE_ALLOWED_HOSTS: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'comma-separated hosts (host or host:port) allowed besides the Braze instance hosts',
    }),
  ),
})
export type BrazeConfig = Static<typeof BrazeConfig>
