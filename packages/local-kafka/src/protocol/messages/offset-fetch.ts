import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const OffsetFetch: ApiDef = {
  key: 9,
  name: 'OffsetFetch',
  minVersion: 1,
  maxVersion: 5,
  flexibleFrom: 6,
  request: [
    f('groupId', 'string'),
    f('topics', [f('name', 'string'), f('partitionIndexes', arrayOf('int32'))], { nullable: '2+' }),
  ],
  response: [
    f('throttleTimeMs', 'int32', { v: '3+' }),
    f('topics', [
      f('name', 'string'),
      f('partitions', [
        f('partitionIndex', 'int32'),
        f('committedOffset', 'int64'),
        f('committedLeaderEpoch', 'int32', { v: '5+', default: -1 }),
        f('metadata', 'string', { nullable: '0+' }),
        f('errorCode', 'int16'),
      ]),
    ]),
    f('errorCode', 'int16', { v: '2+' }),
  ],
}
