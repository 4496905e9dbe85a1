import { type KafkaClient } from '@lookstream/kafka'
import { type Redis } from 'ioredis'

// /readyz checks every dependency a send needs: Redis answers PING, and a Kafka broker answers a metadata request
// (a frozen or unreachable broker fails the check within the readiness timeout). One metadata request is in
// flight at a time: probes that arrive meanwhile share it instead of piling up behind a frozen broker.

export interface IngressReadiness {
  checks: Record<string, () => Promise<boolean>>
  close(): Promise<void>
}

export function ingressReadiness(redis: Redis, kafka: KafkaClient): IngressReadiness {
  const admin = kafka.admin()
  let connected: Promise<void> | undefined
  let inFlight: Promise<boolean> | undefined
  const kafkaCheck = async (): Promise<boolean> => {
    connected ??= admin.connect().catch((err: unknown) => {
      connected = undefined
      throw err
    })
    await connected
    const { brokers } = await admin.describeCluster()
    return brokers.length > 0
  }
  return {
    checks: {
      redis: async () => (await redis.ping()) === 'PONG',
      kafka: () => {
        inFlight ??= kafkaCheck().finally(() => (inFlight = undefined))
        return inFlight
      },
    },
    async close() {
      if (connected !== undefined) await admin.disconnect()
    },
  }
}
