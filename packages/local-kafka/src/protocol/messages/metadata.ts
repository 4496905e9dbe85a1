import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const Metadata: ApiDef = {
  key: 3,
  name: 'Metadata',
  minVersion: 0,
  maxVersion: 6,
  flexibleFrom: 9,
  request: [
    f('topics', [f('name', 'string')], { nullable: '1+' }),
    f('allowAutoTopicCreation', 'bool', { v: '4+', default: true }),
  ],
  response: [
    f('throttleTimeMs', 'int32', { v: '3+' }),
    f('brokers', [
      f('nodeId', 'int32'),
      f('host', 'string'),
      f('port', 'int32'),
      f('rack', 'string', { v: '1+', nullable: '1+' }),
    ]),
    f('clusterId', 'string', { v: '2+', nullable: '2+' }),
    f('controllerId', 'int32', { v: '1+', default: -1 }),
    f('topics', [
      f('errorCode', 'int16'),
      f('name', 'string'),
      f('isInternal', 'bool', { v: '1+' }),
      f('partitions', [
        f('errorCode', 'int16'),
        f('partitionIndex', 'int32'),
        f('leaderId', 'int32'),
        f('leaderEpoch', 'int32', { v: '7+', default: -1 }),
        f('replicaNodes', arrayOf('int32')),
        f('isrNodes', arrayOf('int32')),
        f('offlineReplicas', arrayOf('int32'), { v: '5+' }),
      ]),
    ]),
  ],
}
