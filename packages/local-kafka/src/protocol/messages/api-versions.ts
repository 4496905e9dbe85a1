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
  ],
}
