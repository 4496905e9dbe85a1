import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const CreateTopics: ApiDef = {
  key: 19,
  name: 'CreateTopics',
  minVersion: 0,
  maxVersion: 4,
  flexibleFrom: 5,
  request: [
    f('topics', [
      f('name', 'string'),
      f('numPartitions', 'int32'),
      f('replicationFactor', 'int16'),
      f('assignments', [f('partitionIndex', 'int32'), f('brokerIds', arrayOf('int32'))]),
      f('configs', [f('name', 'string'), f('value', 'string', { nullable: '0+' })]),
    ]),
    f('timeoutMs', 'int32'),
    f('validateOnly', 'bool', { v: '1+' }),
  ],
  response: [
    f('throttleTimeMs', 'int32', { v: '2+' }),
    f('topics', [
      f('name', 'string'),
      f('errorCode', 'int16'),
      f('errorMessage', 'string', { v: '1+', nullable: '0+' }),
    ]),
  ],
}
