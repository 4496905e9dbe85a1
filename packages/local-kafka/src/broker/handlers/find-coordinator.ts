import { type Handler } from '../context.ts'

// A single node coordinates every group (and would every transaction).
export const handleFindCoordinator: Handler = (ctx) => ({
  throttleTimeMs: 0,
  errorCode: 0,
  errorMessage: null,
  nodeId: 0,
  host: ctx.config.host,
  port: ctx.config.port,
})
