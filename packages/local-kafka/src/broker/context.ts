import { type Message } from '../protocol/codec.ts'
import { type TopicStore } from '../storage/topic-store.ts'
import { type SaslAuthority } from './sasl/mechanisms.ts'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFn = (level: LogLevel, msg: string, fields?: object) => void

export interface BrokerConfig {
  host: string
  port: number
  clusterId: string
  defaultPartitions: number
  autoCreateTopics: boolean
  retentionMs: number
  retentionBytes: number
  segmentBytes: number
  maxMessageBytes: number
  fsync: boolean
}

// What a handler knows about the connection a request came on.
export interface ConnectionContext {
  clientId: string
  clientHost: string
  // Cleanups to run if the socket closes while a request is parked (fetch timers, watchers).
  onClose: Set<() => void>
  closed: boolean
  // Where the next Fetch starts filling its byte budget, rotated so no partition starves (Kafka rotates
  // through fetch sessions; clients here fetch sessionless).
  fetchRotation: number
}

export interface BrokerContext {
  config: BrokerConfig
  store: TopicStore
  log: LogFn
  nextProducerId(): number
  // Set when clients must authenticate (SASL_PLAINTEXT or SASL_SSL listener).
  sasl: SaslAuthority | null
}

// null means "send no response" (Produce with acks=0).
export type HandlerResult = Message | null | Promise<Message | null>
export type Handler = (ctx: BrokerContext, req: Message, version: number, conn: ConnectionContext) => HandlerResult
