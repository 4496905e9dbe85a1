// Redis keys shared by the ingress (which writes send records) and the destinations (which count into them).
// Every send key carries the hash tag {sends}, so on Redis Cluster they all live on one slot: the ingress writes
// a record and the index in one MULTI, lists them with one pipeline, and a destination counts into many records
// with one pipeline per Kafka batch. A send record is small and short-lived, so one slot holds them easily.
export const SEND_INDEX_KEY = 'lookstream:{sends}:index'

export function sendRecordKey(sendId: string): string {
  return `lookstream:{sends}:send:${sendId}`
}
