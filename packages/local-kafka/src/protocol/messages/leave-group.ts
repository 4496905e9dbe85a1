import { field as f, type ApiDef } from '../schema.ts'

export const LeaveGroup: ApiDef = {
  key: 13,
  name: 'LeaveGroup',
  minVersion: 0,
  maxVersion: 3,
  flexibleFrom: 4,
  request: [
    f('groupId', 'string'),
    f('memberId', 'string', { v: '0-2' }),
    f('members', [f('memberId', 'string'), f('groupInstanceId', 'string', { nullable: '3+' })], { v: '3+' }),
  ],
  response: [
    f('throttleTimeMs', 'int32', { v: '1+' }),
    f('errorCode', 'int16'),
    f(
      'members',
      [f('memberId', 'string'), f('groupInstanceId', 'string', { nullable: '3+' }), f('errorCode', 'int16')],
      { v: '3+' },
    ),
  ],
}
