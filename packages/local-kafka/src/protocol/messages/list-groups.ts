import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const ListGroups: ApiDef = {
  key: 16,
  name: 'ListGroups',
  minVersion: 0,
  maxVersion: 2,
  flexibleFrom: 3,
  request: [f('statesFilter', arrayOf('string'), { v: '4+' })],
  response: [
    f('throttleTimeMs', 'int32', { v: '1+' }),
    f('errorCode', 'int16'),
    f('groups', [f('groupId', 'string'), f('protocolType', 'string'), f('groupState', 'string', { v: '4+' })]),
  ],
}
