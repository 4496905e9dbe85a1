import { field as f, type ApiDef } from '../schema.ts'

export const JoinGroup: ApiDef = {
  key: 11,
  name: 'JoinGroup',
  minVersion: 0,
  maxVersion: 5,
  flexibleFrom: 6,
  request: [
    f('groupId', 'string'),
    f('sessionTimeoutMs', 'int32'),
    f('rebalanceTimeoutMs', 'int32', { v: '1+', default: -1 }),
    f('memberId', 'string'),
    f('groupInstanceId', 'string', { v: '5+', nullable: '5+' }),
    f('protocolType', 'string'),
    f('protocols', [f('name', 'string'), f('metadata', 'bytes')]),
  ],
  response: [
    f('throttleTimeMs', 'int32', { v: '2+' }),
    f('errorCode', 'int16'),
    f('generationId', 'int32', { default: -1 }),
    f('protocolName', 'string', { nullable: '7+' }),
    f('leader', 'string'),
    f('memberId', 'string'),
    f('members', [
      f('memberId', 'string'),
      f('groupInstanceId', 'string', { v: '5+', nullable: '5+' }),
      f('metadata', 'bytes'),
    ]),
  ],
}
