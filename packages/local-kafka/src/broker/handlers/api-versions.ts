import { type Message } from '../../protocol/codec.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { API_DEFS } from '../../protocol/messages/index.ts'
import { type Handler } from '../context.ts'

const SOFTWARE_NAME = /^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$/

export function apiVersionsBody(errorCode: number): Message {
  return {
    errorCode,
    apiKeys: API_DEFS.map((d) => ({ apiKey: d.key, minVersion: d.minVersion, maxVersion: d.maxVersion })),
    throttleTimeMs: 0,
  }
}

export const handleApiVersions: Handler = (_ctx, req, version) => {
  if (version >= 3) {
    const name = req.clientSoftwareName as string
    const ver = req.clientSoftwareVersion as string
    if (!SOFTWARE_NAME.test(name) || !SOFTWARE_NAME.test(ver)) return apiVersionsBody(ErrorCode.INVALID_REQUEST)
  }
  return apiVersionsBody(0)
}
