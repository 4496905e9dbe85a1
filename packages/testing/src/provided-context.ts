import type { HarnessMode, Source } from './harness.ts'

// What the harness's globalSetup hands to tests through inject('...').
declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string
    redisUrl: string
    s3Endpoint: string
    harnessMode: HarnessMode
    harnessSources: { kafka: Source; redis: Source; s3: Source }
    /** Empty when Kafka is available; otherwise why it is not. */
    kafkaUnavailable: string
  }
}
