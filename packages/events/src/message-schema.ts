import { Type, type Static } from 'typebox'

// Segment Spec fields (segment.com/docs/connections/spec/common) plus lookstream's routing in `integrations`.
// The top level and the integration options are closed (a misspelt field fails validation instead of being
// silently ignored); traits, properties and context stay open because they carry the customer's data.

/** Identifiers and names: non-empty, bounded so one field cannot eat the whole message budget. */
const Identifier = Type.String({ minLength: 1, maxLength: 1024 })

/** Segment dedupes on messageId and requires it to be under 100 characters. */
export const MessageId = Type.String({ minLength: 1, maxLength: 99 })

/** ISO 8601 / RFC 3339 date-time with a zone, e.g. 2026-11-22T06:00:00Z. */
export const Timestamp = Type.String({ format: 'date-time' })

/** A connection names a credential set held by the destination service, never the secret itself. */
export const Connection = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' })

/** Any JSON object: keys are the customer's, values any JSON value. */
const JsonObject = Type.Record(Type.String(), Type.Unknown())

export const LookstreamContext = Type.Object(
  {
    sendId: Type.String({ minLength: 1, maxLength: 128 }),
    row: Type.Integer({ minimum: 0 }),
    action: Type.String({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false },
)
export type LookstreamContext = Static<typeof LookstreamContext>

export const Library = Type.Object(
  { name: Type.String({ maxLength: 128 }), version: Type.String({ maxLength: 64 }) },
  { additionalProperties: true },
)

/** Segment's context dictionary; the ingress adds `lookstream` (which send and row); `library` names another producer. */
export const Context = Type.Object(
  { lookstream: Type.Optional(LookstreamContext), library: Type.Optional(Library) },
  { additionalProperties: true },
)
export type Context = Static<typeof Context>

const connection = Type.Optional(Connection)

export const SegmentOptions = Type.Object({ connection }, { additionalProperties: false })
export type SegmentOptions = Static<typeof SegmentOptions>

export const BrazeOptions = Type.Object(
  {
    connection,
    identifierKey: Type.Optional(Type.Union([Type.Literal('external_id'), Type.Literal('braze_id')])),
    exportLabel: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    updateExistingOnly: Type.Optional(Type.Boolean()),
    /** Null values: `skip` leaves the attribute as it is at Braze (default), `send` removes it there. */
    nulls: Type.Optional(Type.Union([Type.Literal('skip'), Type.Literal('send')])),
  },
  { additionalProperties: false },
)
export type BrazeOptions = Static<typeof BrazeOptions>

export const HeapOptions = Type.Object(
  {
    connection,
    propertyType: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('account')])),
    joinKey: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    /** Heap environment (app_id); absent: the connection's default environment. */
    envId: Type.Optional(Type.String({ pattern: '^[0-9]{1,32}$' })),
    /** A string property of 1,024 characters or more: the row is rejected (default) or the value cut to 1,023. */
    longValues: Type.Optional(Type.Union([Type.Literal('reject'), Type.Literal('truncate')])),
  },
  { additionalProperties: false },
)
export type HeapOptions = Static<typeof HeapOptions>

export const MParticleOptions = Type.Object(
  {
    connection,
    environment: Type.Optional(Type.Union([Type.Literal('production'), Type.Literal('development')])),
    dataType: Type.Optional(Type.Union([Type.Literal('user_data'), Type.Literal('event_data')])),
    eventType: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
)
export type MParticleOptions = Static<typeof MParticleOptions>

export const RecurlyEngageOptions = Type.Object({ connection }, { additionalProperties: false })
export type RecurlyEngageOptions = Static<typeof RecurlyEngageOptions>

// Segment semantics: `true` or an options object enables a destination, `false` disables it, and
// `All` (default true) says whether unlisted destinations are included.
export const Integrations = Type.Object(
  {
    All: Type.Optional(Type.Boolean()),
    Segment: Type.Optional(Type.Union([Type.Boolean(), SegmentOptions])),
    Braze: Type.Optional(Type.Union([Type.Boolean(), BrazeOptions])),
    Heap: Type.Optional(Type.Union([Type.Boolean(), HeapOptions])),
    mParticle: Type.Optional(Type.Union([Type.Boolean(), MParticleOptions])),
    'Recurly Engage': Type.Optional(Type.Union([Type.Boolean(), RecurlyEngageOptions])),
  },
  { additionalProperties: false },
)
export type Integrations = Static<typeof Integrations>

const common = {
  messageId: MessageId,
  userId: Type.Optional(Identifier),
  anonymousId: Type.Optional(Identifier),
  context: Type.Optional(Context),
  timestamp: Timestamp,
  integrations: Integrations,
}

// The Segment Spec requires userId or anonymousId on every call, group included.
const hasIdentity = [{ required: ['userId'] }, { required: ['anonymousId'] }]

export const IdentifyMessage = Type.Object(
  { type: Type.Literal('identify'), ...common, traits: Type.Optional(JsonObject) },
  { additionalProperties: false, anyOf: hasIdentity },
)
export type IdentifyMessage = Static<typeof IdentifyMessage>

export const TrackMessage = Type.Object(
  { type: Type.Literal('track'), ...common, event: Identifier, properties: Type.Optional(JsonObject) },
  { additionalProperties: false, anyOf: hasIdentity },
)
export type TrackMessage = Static<typeof TrackMessage>

export const GroupMessage = Type.Object(
  { type: Type.Literal('group'), ...common, groupId: Identifier, traits: Type.Optional(JsonObject) },
  { additionalProperties: false, anyOf: hasIdentity },
)
export type GroupMessage = Static<typeof GroupMessage>

export const CanonicalMessage = Type.Union([IdentifyMessage, TrackMessage, GroupMessage])
export type CanonicalMessage = Static<typeof CanonicalMessage>

export type MessageType = CanonicalMessage['type']

export const MESSAGE_TYPES: readonly MessageType[] = ['identify', 'track', 'group']
