import { field as f, type ApiDef } from '../schema.ts'

export const FindCoordinator: ApiDef = {
  key: 10,
  name: 'FindCoordinator',
  minVersion: 0,
  maxVersion: 2,
  flexibleFrom: 3,
  request: [f('key', 'string'), f('keyType', 'int8', { v: '1+' })],
  response: [
    f('throttleTimeMs', 'int32', { v: '1+' }),
    f('errorCode', 'int16'),
    f('errorMessage', 'string', { v: '1+', nullable: '1+' }),
    f('nodeId', 'int32'),
    f('host', 'string'),
    f('port', 'int32'),
  ],
}
