import { connectionsEnv } from '@lookstream/destination'
import { Type, type Static } from 'typebox'

/** mParticle's Events API pods (server-to-server), by the name the mParticle console shows. */
export const MPARTICLE_PODS = {
  US1: 'https://s2s.us1.mparticle.com/v2',
  US2: 'https://s2s.us2.mparticle.com/v2',
  EU1: 'https://s2s.eu1.mparticle.com/v2',
  AU1: 'https://s2s.au1.mparticle.com/v2',
} as const

/** Every host the pods above (and the legacy US1 name) live on. */
export const MPARTICLE_API_HOSTS = [
  's2s.mparticle.com',
  ...Object.values(MPARTICLE_PODS).map((url) => new URL(url).host),
] as const

const ApiUrl = Type.String({ pattern: '^https?://[^\\s/]+(/.*)?$', maxLength: 512 })
const Pod = Type.Union(
  Object.keys(MPARTICLE_PODS).map((pod) => Type.Literal(pod)),
  { description: 'US1, US2, EU1 or AU1' },
)
const BatchesPerSecond = Type.Number({ exclusiveMinimum: 0, maximum: 100_000 })

export const MparticleConnectionConfig = Type.Object(
  {
    apiKey: Type.String({ minLength: 1, maxLength: 256 }),
    apiSecret: Type.String({ minLength: 1, maxLength: 256 }),
    /** The pod of the workspace; `apiUrl` overrides it (a proxy, or the simulator). */
    pod: Type.Optional(Pod),
    apiUrl: Type.Optional(ApiUrl),
    batchesPerSecond: Type.Optional(BatchesPerSecond),
  },
  { additionalProperties: false },
)
export type MparticleConnectionConfig = Static<typeof MparticleConnectionConfig>

export const MparticleConfig = Type.Object({
  MPARTICLE_API_KEY: Type.Optional(
    Type.String({ minLength: 1, maxLength: 256, description: 'API key of the `default` connection' }),
  ),
  MPARTICLE_API_SECRET: Type.Optional(
    Type.String({ minLength: 1, maxLength: 256, description: 'API secret of the `default` connection' }),
  ),
  MPARTICLE_POD: Type.Union(
    Object.keys(MPARTICLE_PODS).map((pod) => Type.Literal(pod)),
    { default: 'US1', description: 'pod of the `default` connection: US1, US2, EU1 or AU1' },
  ),
  MPARTICLE_API_URL: Type.Optional(
    Type.String({
      ...ApiUrl,
      description:
        'Events API base URL of the `default` connection (overrides MPARTICLE_POD), e.g. https://s2s.eu1.mparticle.com/v2',
    }),
  ),
  ...connectionsEnv(
    'MPARTICLE',
    MparticleConnectionConfig,
    '{"name": {"apiKey": "…", "apiSecret": "…", "pod": "EU1", "batchesPerSecond": 270}}',
  ),
  MPARTICLE_BATCHES_PER_SECOND: Type.Number({
    ...BatchesPerSecond,
    default: 270,
    description: "batches per second per connection, shared by all replicas (mParticle's default limit: ~270)",
  }),
  MPARTICLE_USAGE_HEADER: Type.Boolean({
    default: true,
    description:
      'slow the shared rate when X-mp-rate-limit-percentage-used shows other clients of the account using part of its limit',
  }),
  MPARTICLE_ALLOWED_HOSTS: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'comma-separated hosts requests may go to (default: the mParticle pods + the MPARTICLE_API_URL host)',
    }),
  ),
})
export type MparticleConfig = Static<typeof MparticleConfig>
