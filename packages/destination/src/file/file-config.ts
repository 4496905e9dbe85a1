import { Type, type Static } from 'typebox'

/** Settings of the file runtime (each has a default that suits production). */
export const FileEnv = Type.Object({
  DELIVERY_FILE_CHUNK_BYTES: Type.Integer({
    minimum: 1024,
    maximum: 64 * 1024 * 1024,
    default: 2 * 1024 * 1024,
    description: 'a staged chunk is written once its rows reach this many bytes',
  }),
  DELIVERY_FILE_LINGER_MS: Type.Integer({
    minimum: 0,
    maximum: 60_000,
    default: 1000,
    description: 'a chunk is written at the latest this long after its first row (offsets commit after it)',
  }),
  DELIVERY_FILE_MAX_BUFFERED_BYTES: Type.Integer({
    minimum: 1024,
    default: 16 * 1024 * 1024,
    description: 'bytes of chunk buffers held in memory before being staged; above it partitions pause',
  }),
  DELIVERY_FILE_FETCH_BYTES_PER_PARTITION: Type.Integer({
    minimum: 16 * 1024,
    maximum: 16 * 1024 * 1024,
    default: 256 * 1024,
    description: 'the most record bytes one Kafka fetch returns per partition (decoded records are held until staged)',
  }),
  DELIVERY_FILE_MAX_CONCURRENT_WRITES: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
  DELIVERY_FILE_LOCK_MS: Type.Integer({
    minimum: 500,
    default: 30_000,
    description: "a composer's lease on a send; another replica takes over after it lapses (crash)",
  }),
  DELIVERY_FILE_SWEEP_MS: Type.Integer({
    minimum: 100,
    default: 10_000,
    description: 'how often open sends are checked (finished sends whose composer died, abandoned sends)',
  }),
  DELIVERY_FILE_DISCOVER_MS: Type.Integer({
    minimum: 100,
    default: 60_000,
    description:
      'how often the staging area is listed for sends whose state Redis lost (it came back empty), to adopt them',
  }),
  DELIVERY_FILE_ABANDON_HOURS: Type.Number({
    exclusiveMinimum: 0,
    default: 24,
    description: 'rows of a send whose finished event never came are dropped (and the send failed) after this',
  }),
  DELIVERY_FILE_STATE_TTL_SECONDS: Type.Integer({ minimum: 3600, default: 14 * 24 * 3600 }),
})
export type FileEnv = Static<typeof FileEnv>
