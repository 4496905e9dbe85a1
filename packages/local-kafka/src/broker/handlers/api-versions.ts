import { type Message } from '../../protocol/codec.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { API_DEFS } from '../../protocol/messages/index.ts'
import { type Handler } from '../context.ts'

const SOFTWARE_NAME = /^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$/

const SASL_KEYS = new Set([17, 36])

// The SASL APIs are listed only on a listener that authenticates, as Kafka does.
export function apiVersionsBody(errorCode: number, sasl: boolean): Message {
  return {
    errorCode,
    apiKeys: API_DEFS.filter((d) => sasl || !SASL_KEYS.has(d.key)).map((d) => ({
      apiKey: d.key,
      minVersion: d.minVersion,
      maxVersion: d.maxVersion,
    })),
    throttleTimeMs: 0,
  }
}

export const handleApiVersions: Handler = (ctx, req, version) => {
  if (version >= 3) {
    const name = req.clientSoftwareName as string
    const ver = req.clientSoftwareVersion as string
    if (!SOFTWARE_NAME.test(name) || !SOFTWARE_NAME.test(ver))
      return apiVersionsBody(ErrorCode.INVALID_REQUEST, ctx.sasl !== null)
  }
  return apiVersionsBody(0, ctx.sasl !== null)
}
