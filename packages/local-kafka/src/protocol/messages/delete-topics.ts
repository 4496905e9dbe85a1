import { arrayOf, field as f, type ApiDef } from '../schema.ts'

export const DeleteTopics: ApiDef = {
  key: 20,
  name: 'DeleteTopics',
  minVersion: 0,
  maxVersion: 1,
  flexibleFrom: 4,
  request: [f('topicNames', arrayOf('string'), { v: '0-5' }), f('timeoutMs', 'int32')],
  response: [f('throttleTimeMs', 'int32', { v: '1+' }), f('responses', [f('name', 'string'), f('errorCode', 'int16')])],
}
