import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const ListOffsets: ApiDef = {
  key: 2,
  name: 'ListOffsets',
  minVersion: 1,
  maxVersion: 3,
  flexibleFrom: 6,
  request: [
    f('replicaId', 'int32'),
    f('isolationLevel', 'int8', { v: '2+' }),
    f('topics', [
      f('name', 'string'),
      f('partitions', [
        f('partitionIndex', 'int32'),
        f('currentLeaderEpoch', 'int32', { v: '4+', default: -1 }),
        f('timestamp', 'int64'),
        f('maxNumOffsets', 'int32', { v: '0', default: 1 }),
      ]),
    ]),
  ],
  response: [
    f('throttleTimeMs', 'int32', { v: '2+' }),
    f('topics', [
      f('name', 'string'),
      f('partitions', [
        f('partitionIndex', 'int32'),
        f('errorCode', 'int16'),
        f('oldStyleOffsets', arrayOf('int64'), { v: '0' }),
        f('timestamp', 'int64', { v: '1+', default: -1 }),
        f('offset', 'int64', { v: '1+', default: -1 }),
        f('leaderEpoch', 'int32', { v: '4+', default: -1 }),
      ]),
    ]),
  ],
}
