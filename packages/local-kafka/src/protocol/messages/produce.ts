import { field as f, type ApiDef } from '../schema.ts'

export const Produce: ApiDef = {
  key: 0,
  name: 'Produce',
  minVersion: 3,
  maxVersion: 7,
  flexibleFrom: 9,
  request: [
    f('transactionalId', 'string', { v: '3+', nullable: '3+' }),
    f('acks', 'int16'),
    f('timeoutMs', 'int32'),
    f('topicData', [f('name', 'string'), f('partitionData', [f('index', 'int32'), f('records', 'records')])]),
  ],
  response: [
    f('responses', [
      f('name', 'string'),
      f('partitionResponses', [
        f('index', 'int32'),
        f('errorCode', 'int16'),
        f('baseOffset', 'int64'),
        f('logAppendTimeMs', 'int64', { v: '2+', default: -1 }),
        f('logStartOffset', 'int64', { v: '5+', default: -1 }),
      ]),
    ]),
    f('throttleTimeMs', 'int32', { v: '1+' }),
  ],
}
