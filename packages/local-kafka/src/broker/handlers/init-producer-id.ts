import { ErrorCode } from '../../protocol/error-codes.ts'
import { type Handler } from '../context.ts'

// Idempotent producers only: transactions are not implemented, so a transactional id is refused.
export const handleInitProducerId: Handler = (ctx, req) => {
  if (req.transactionalId !== null) {
    ctx.log('warn', 'transactions are not supported', { transactionalId: req.transactionalId })
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
      producerId: -1,
      producerEpoch: -1,
    }
  }
  return { throttleTimeMs: 0, errorCode: 0, producerId: ctx.nextProducerId(), producerEpoch: 0 }
}
