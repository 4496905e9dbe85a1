import { field as f, type ApiDef } from '../schema.ts'

export const InitProducerId: ApiDef = {
  key: 22,
  name: 'InitProducerId',
  minVersion: 0,
  maxVersion: 1,
  flexibleFrom: 2,
  request: [
    f('transactionalId', 'string', { nullable: '0+' }),
    f('transactionTimeoutMs', 'int32'),
    f('producerId', 'int64', { v: '3+', default: -1 }),
    f('producerEpoch', 'int16', { v: '3+', default: -1 }),
  ],
  response: [
    f('throttleTimeMs', 'int32'),
    f('errorCode', 'int16'),
    f('producerId', 'int64', { default: -1 }),
    f('producerEpoch', 'int16'),
  ],
}
