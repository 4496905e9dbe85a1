import { field as f, type ApiDef } from '../schema.ts'

export const SyncGroup: ApiDef = {
  key: 14,
  name: 'SyncGroup',
  minVersion: 0,
  maxVersion: 3,
  flexibleFrom: 4,
  request: [
    f('groupId', 'string'),
    f('generationId', 'int32'),
    f('memberId', 'string'),
    f('groupInstanceId', 'string', { v: '3+', nullable: '3+' }),
    f('assignments', [f('memberId', 'string'), f('assignment', 'bytes')]),
  ],
  response: [f('throttleTimeMs', 'int32', { v: '1+' }), f('errorCode', 'int16'), f('assignment', 'bytes')],
}
