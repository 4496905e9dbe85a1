import { connectionsEnv } from '@lookstream/destination'
import { Type, type Static } from 'typebox'

// The bucket, access key, secret and upload location come from the Recurly Engage console (Settings › User
// Traits). They are connections of this service (environment or a mounted secret file), never Looker params.

const Prefix = Type.String({
  maxLength: 512,
  pattern: '^([^/][^\\s]*)?$',
  description: 'a folder in the bucket (no leading "/"; a trailing "/" is implied)',
})
const Endpoint = Type.String({ pattern: '^https?://[^\\s/]+/?$', maxLength: 512 })
const Region = Type.String({ pattern: '^[a-z0-9-]{2,32}$' })

export const RecurlyEngageConnectionConfig = Type.Object(
  {
    bucket: Type.String({ minLength: 3, maxLength: 63, pattern: '^[a-z0-9][a-z0-9.-]*[a-z0-9]$' }),
    prefix: Type.Optional(Prefix),
    region: Type.Optional(Region),
    endpoint: Type.Optional(Endpoint),
    forcePathStyle: Type.Optional(Type.Boolean()),
    accessKeyId: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    secretAccessKey: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    stagingPrefix: Type.Optional(Prefix),
  },
  { additionalProperties: false },
)
export type RecurlyEngageConnectionConfig = Static<typeof RecurlyEngageConnectionConfig>

export const RecurlyEngageConfig = Type.Object({
  RECURLY_ENGAGE_S3_BUCKET: Type.Optional(
    Type.String({
      minLength: 3,
      maxLength: 63,
      pattern: '^[a-z0-9][a-z0-9.-]*[a-z0-9]$',
      description: 'bucket of the `default` connection (given by Recurly Engage)',
    }),
  ),
  RECURLY_ENGAGE_S3_PREFIX: Type.String({
    ...Prefix,
    default: 'ingest/',
    description: 'upload location of the `default` connection (the "ingest" folder Recurly Engage shows)',
  }),
  RECURLY_ENGAGE_S3_REGION: Type.String({ ...Region, default: 'us-east-1' }),
  RECURLY_ENGAGE_S3_ENDPOINT: Type.Optional(
    Type.String({ ...Endpoint, description: 'S3-compatible store (path-style addressing); AWS S3 when absent' }),
  ),
  RECURLY_ENGAGE_S3_FORCE_PATH_STYLE: Type.Optional(
    Type.Boolean({ description: 'path-style addressing (default: on with RECURLY_ENGAGE_S3_ENDPOINT, off without)' }),
  ),
  RECURLY_ENGAGE_S3_ACCESS_KEY_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  RECURLY_ENGAGE_S3_SECRET_ACCESS_KEY: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  RECURLY_ENGAGE_S3_STAGING_PREFIX: Type.String({
    ...Prefix,
    default: 'lookstream-staging/',
    description: 'where rows are staged before the file is published; must not lie inside the upload location',
  }),
  ...connectionsEnv(
    'RECURLY_ENGAGE',
    RecurlyEngageConnectionConfig,
    '{"name": {"bucket": "…", "prefix": "ingest/", "region": "us-east-1", "accessKeyId": "…", "secretAccessKey": "…"}}',
  ),
  RECURLY_ENGAGE_S3_REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 60_000,
    description: 'longest one S3 request may take',
  }),
  RECURLY_ENGAGE_ALLOWED_HOSTS: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'comma-separated S3-compatible hosts named connections may use (the RECURLY_ENGAGE_S3_ENDPOINT host always may; AWS S3 needs no entry)',
    }),
  ),
})
export type RecurlyEngageConfig = Static<typeof RecurlyEngageConfig>
