import { connectionsEnv } from '@lookstream/destination'
import { Type, type Static } from 'typebox'

/** Segment's public Tracking API hosts: US, and the EU (Dublin) hosts as Segment's sources name them. */
export const SEGMENT_API_HOSTS = ['api.segment.io', 'events.eu1.segmentapis.com', 'eu1.api.segmentapis.com'] as const

const ApiUrl = Type.String({ pattern: '^https?://[^\\s/]+(/.*)?$', maxLength: 512 })

export const SegmentConnectionConfig = Type.Object(
  {
    writeKey: Type.String({ minLength: 1, maxLength: 256 }),
    apiUrl: Type.Optional(ApiUrl),
    rateLimitRps: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000 })),
  },
  { additionalProperties: false },
)

export const SegmentConfig = Type.Object({
  SEGMENT_WRITE_KEY: Type.Optional(
    Type.String({ minLength: 1, maxLength: 256, description: 'write key of the `default` connection' }),
  ),
  SEGMENT_API_URL: Type.String({
    ...ApiUrl,
    default: 'https://api.segment.io',
    description: 'API base URL of the `default` connection (EU workspaces: https://events.eu1.segmentapis.com)',
  }),
  ...connectionsEnv(
    'SEGMENT',
    SegmentConnectionConfig,
    '{"name": {"writeKey": "…", "apiUrl": "…", "rateLimitRps": 100}}',
  ),
  SEGMENT_RATE_LIMIT_RPS: Type.Number({
    default: 200,
    exclusiveMinimum: 0,
    maximum: 1000,
    description: 'requests per second per connection, shared by all replicas (Segment allows ~1000 per workspace)',
  }),
  SEGMENT_ALLOWED_HOSTS: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'comma-separated hosts requests may go to (default: Segment API hosts + the SEGMENT_API_URL host)',
    }),
  ),
})
export type SegmentConfig = Static<typeof SegmentConfig>
