import { field as f, type ApiDef } from '../schema.ts'

export const AlterConfigs: ApiDef = {
  key: 33,
  name: 'AlterConfigs',
  minVersion: 0,
  maxVersion: 1,
  flexibleFrom: 2,
  request: [
    f('resources', [
      f('resourceType', 'int8'),
      f('resourceName', 'string'),
      f('configs', [f('name', 'string'), f('value', 'string', { nullable: '0+' })]),
    ]),
    f('validateOnly', 'bool'),
  ],
  response: [
    f('throttleTimeMs', 'int32'),
    f('responses', [
      f('errorCode', 'int16'),
      f('errorMessage', 'string', { nullable: '0+' }),
      f('resourceType', 'int8'),
      f('resourceName', 'string'),
    ]),
  ],
}
