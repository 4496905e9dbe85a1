import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const DescribeConfigs: ApiDef = {
  key: 32,
  name: 'DescribeConfigs',
  minVersion: 0,
  maxVersion: 2,
  flexibleFrom: 4,
  request: [
    f('resources', [
      f('resourceType', 'int8'),
      f('resourceName', 'string'),
      f('configurationKeys', arrayOf('string'), { nullable: '0+' }),
    ]),
    f('includeSynonyms', 'bool', { v: '1+' }),
  ],
  response: [
    f('throttleTimeMs', 'int32'),
    f('results', [
      f('errorCode', 'int16'),
      f('errorMessage', 'string', { nullable: '0+' }),
      f('resourceType', 'int8'),
      f('resourceName', 'string'),
      f('configs', [
        f('name', 'string'),
        f('value', 'string', { nullable: '0+' }),
        f('readOnly', 'bool'),
        f('isDefault', 'bool', { v: '0' }),
        f('configSource', 'int8', { v: '1+', default: -1 }),
        f('isSensitive', 'bool'),
        f('synonyms', [f('name', 'string'), f('value', 'string', { nullable: '0+' }), f('source', 'int8')], {
          v: '1+',
        }),
      ]),
    ]),
  ],
}
