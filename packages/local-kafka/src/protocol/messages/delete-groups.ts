import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const DeleteGroups: ApiDef = {
  key: 42,
  name: 'DeleteGroups',
  minVersion: 0,
  maxVersion: 1,
  flexibleFrom: 2,
  request: [f('groupsNames', arrayOf('string'))],
  response: [f('throttleTimeMs', 'int32'), f('results', [f('groupId', 'string'), f('errorCode', 'int16')])],
}
