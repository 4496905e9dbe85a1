import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const DescribeGroups: ApiDef = {
  key: 15,
  name: 'DescribeGroups',
  minVersion: 0,
  maxVersion: 2,
  flexibleFrom: 5,
  request: [f('groups', arrayOf('string')), f('includeAuthorizedOperations', 'bool', { v: '3+' })],
  response: [
    f('throttleTimeMs', 'int32', { v: '1+' }),
    f('groups', [
      f('errorCode', 'int16'),
      f('groupId', 'string'),
      f('groupState', 'string'),
      f('protocolType', 'string'),
      f('protocolData', 'string'),
      f('members', [
        f('memberId', 'string'),
        f('groupInstanceId', 'string', { v: '4+', nullable: '4+' }),
        f('clientId', 'string'),
        f('clientHost', 'string'),
        f('memberMetadata', 'bytes'),
        f('memberAssignment', 'bytes'),
      ]),
      f('authorizedOperations', 'int32', { v: '3+', default: -2147483648 }),
    ]),
  ],
}
