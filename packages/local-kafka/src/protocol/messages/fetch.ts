import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const Fetch: ApiDef = {
  key: 1,
  name: 'Fetch',
  minVersion: 4,
  maxVersion: 11,
  flexibleFrom: 12,
  request: [
    f('replicaId', 'int32'),
    f('maxWaitMs', 'int32'),
    f('minBytes', 'int32'),
    f('maxBytes', 'int32', { v: '3+', default: 0x7fffffff }),
    f('isolationLevel', 'int8', { v: '4+' }),
    f('sessionId', 'int32', { v: '7+' }),
    f('sessionEpoch', 'int32', { v: '7+', default: -1 }),
    f('topics', [
      f('topic', 'string'),
      f('partitions', [
        f('partition', 'int32'),
        f('currentLeaderEpoch', 'int32', { v: '9+', default: -1 }),
        f('fetchOffset', 'int64'),
        f('logStartOffset', 'int64', { v: '5+', default: -1 }),
        f('partitionMaxBytes', 'int32'),
      ]),
    ]),
    f('forgottenTopicsData', [f('topic', 'string'), f('partitions', arrayOf('int32'))], { v: '7+' }),
    f('rackId', 'string', { v: '11+' }),
  ],
  response: [
    f('throttleTimeMs', 'int32', { v: '1+' }),
    f('errorCode', 'int16', { v: '7+' }),
    f('sessionId', 'int32', { v: '7+' }),
    f('responses', [
      f('topic', 'string'),
      f('partitions', [
        f('partitionIndex', 'int32'),
        f('errorCode', 'int16'),
        f('highWatermark', 'int64'),
        f('lastStableOffset', 'int64', { v: '4+', default: -1 }),
        f('logStartOffset', 'int64', { v: '5+', default: -1 }),
        f('abortedTransactions', [f('producerId', 'int64'), f('firstOffset', 'int64')], {
          v: '4+',
          nullable: '4+',
        }),
        f('preferredReadReplica', 'int32', { v: '11+', default: -1 }),
        f('records', 'records', { nullable: '0+' }),
      ]),
    ]),
  ],
}
