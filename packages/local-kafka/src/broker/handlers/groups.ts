import { type Message } from '../../protocol/codec.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { type Handler } from '../context.ts'
import { type GroupApi, type GroupMethod } from '../group-api.ts'

// Routes a decoded group request to the coordinator. Without one, every group call gets
// COORDINATOR_NOT_AVAILABLE in the response's error fields.
export function groupHandler(groups: GroupApi | null, method: GroupMethod): Handler {
  return (_ctx, req, version, conn) => {
    if (groups === null) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE }
    if (method === 'joinGroup' && version === 0) req.rebalanceTimeoutMs = req.sessionTimeoutMs
    const client = { clientId: conn.clientId, clientHost: conn.clientHost }
    const fn = groups[method].bind(groups) as (r: Message, v: number, c: typeof client) => Message | Promise<Message>
    return fn(req, version, client)
  }
}
