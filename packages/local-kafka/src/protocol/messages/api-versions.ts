import { field as f, type ApiDef } from '../schema.ts'

export const ApiVersions: ApiDef = {
  key: 18,
  name: 'ApiVersions',
  minVersion: 0,
  maxVersion: 3,
  flexibleFrom: 3,
  request: [f('clientSoftwareName', 'string', { v: '3+' }), f('clientSoftwareVersion', 'string', { v: '3+' })],
  response: [
    f('errorCode', 'int16'),
    f('apiKeys', [f('apiKey', 'int16'), f('minVersion', 'int16'), f('maxVersion', 'int16')]),
    f('throttleTimeMs', 'int32', { v: '1+' }),
    f('supportedFeatures', [f('name', 'string'), f('minVersion', 'int16'), f('maxVersion', 'int16')], {
      v: '3+',
      tag: 0,
    }),
    f('finalizedFeaturesEpoch', 'int64', { v: '3+', tag: 1, default: -1 }),
    f('finalizedFeatures', [f('name', 'string'), f('maxVersionLevel', 'int16'), f('minVersionLevel', 'int16')], {
      v: '3+',
      tag: 2,
    }),
    f('zkMigrationReady', 'bool', { v: '3+', tag: 3 }),
  ],
}
