import { Type, type Static } from 'typebox'
import { type DestinationId } from './destinations.ts'
import { Connection, Timestamp } from './message-schema.ts'

const Count = Type.Integer({ minimum: 0 })

// Spelt out as a tuple: a union built with DESTINATIONS.map() would type as `never` under Static.
export const DestinationIdSchema = Type.Union([
  Type.Literal('segment'),
  Type.Literal('braze'),
  Type.Literal('heap'),
  Type.Literal('mparticle'),
  Type.Literal('recurly-engage'),
])
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
// Fails to compile when DESTINATIONS and this schema disagree.
const idsAgree: Same<DestinationId, Static<typeof DestinationIdSchema>> = true
void idsAgree

export const SendCounts = Type.Object(
  {
    received: Type.Optional(Count),
    accepted: Type.Optional(Count),
    rejected: Type.Optional(Count),
    produced: Type.Optional(Count),
    delivered: Type.Optional(Count),
    failed: Type.Optional(Count),
    deadLettered: Type.Optional(Count),
  },
  { additionalProperties: false },
)
export type SendCounts = Static<typeof SendCounts>

export const RejectReason = Type.Object(
  { row: Count, reason: Type.String({ maxLength: 1024 }) },
  { additionalProperties: false },
)
export type RejectReason = Static<typeof RejectReason>

/** At most this many reject reasons travel in one send event; the send record in Redis keeps the counts. */
export const MAX_REJECT_REASONS = 20

/**
 * One announcement on lookstream.sends.v1, keyed by sendId. The ingress publishes `started`, any number of
 * `progress` and one `finished` per Looker send; destination services may publish `delivery` with their
 * own counts. Counts are totals so far (not increments), so the latest event per (sendId, phase, producer) wins.
 */
export const SendEvent = Type.Object(
  {
    type: Type.Literal('send'),
    phase: Type.Union([
      Type.Literal('started'),
      Type.Literal('progress'),
      Type.Literal('finished'),
      Type.Literal('delivery'),
    ]),
    sendId: Type.String({ minLength: 1, maxLength: 128 }),
    at: Timestamp,
    producer: Type.String({ minLength: 1, maxLength: 64 }),
    destination: DestinationIdSchema,
    action: Type.String({ minLength: 1, maxLength: 128 }),
    connection: Connection,
    lookId: Type.Optional(Type.String({ maxLength: 128 })),
    scheduledPlanId: Type.Optional(Type.String({ maxLength: 128 })),
    webhookId: Type.Optional(Type.String({ maxLength: 128 })),
    ranAt: Type.Optional(Type.String({ maxLength: 64 })),
    status: Type.Optional(Type.Union([Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')])),
    counts: SendCounts,
    startedAt: Timestamp,
    finishedAt: Type.Optional(Timestamp),
    durationMs: Type.Optional(Type.Number({ minimum: 0 })),
    rejectReasons: Type.Optional(Type.Array(RejectReason, { maxItems: MAX_REJECT_REASONS })),
    error: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: false },
)
export type SendEvent = Static<typeof SendEvent>

/** `lookstream-schema` header value of a send event. */
export const SEND_EVENT_SCHEMA = 'send.v1'
