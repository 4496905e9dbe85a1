import { arrayOf, field as f, type ApiDef } from '../schema.ts'

// v0: the SASL tokens that follow travel as bare size-prefixed frames; v1: inside SaslAuthenticate requests.
export const SaslHandshake: ApiDef = {
  key: 17,
  name: 'SaslHandshake',
  minVersion: 0,
  maxVersion: 1,
  flexibleFrom: Number.MAX_SAFE_INTEGER,
  request: [f('mechanism', 'string')],
  response: [f('errorCode', 'int16'), f('mechanisms', arrayOf('string'))],
}

export const SaslAuthenticate: ApiDef = {
  key: 36,
  name: 'SaslAuthenticate',
  minVersion: 0,
  maxVersion: 1,
  flexibleFrom: 2,
  request: [f('authBytes', 'bytes')],
  response: [
    f('errorCode', 'int16'),
    f('errorMessage', 'string', { nullable: '0+' }),
    f('authBytes', 'bytes'),
    f('sessionLifetimeMs', 'int64', { v: '1+' }),
  ],
}
