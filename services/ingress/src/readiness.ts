import { type KafkaClient } from '@lookstream/kafka'

// /readyz checks what a send cannot go without: a Kafka broker answers a metadata request (a frozen or unreachable
// broker fails the check within the readiness timeout). One metadata request is in flight at a time: probes that
// arrive meanwhile share it instead of piling up behind a frozen broker. Redis is not checked: without it a
// running send still finishes (its verdict says its record is incomplete) and a new execute is refused with the
// reason (the destination registry cannot be read), where an ingress taken out of its Service would leave Looker
// with no answer at all. lookstream_ingress_redis_available reports Redis instead.

export interface IngressReadiness {
  checks: Record<string, () => Promise<boolean>>
  close(): Promise<void>
}

export function ingressReadiness(kafka: KafkaClient): IngressReadiness {
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
