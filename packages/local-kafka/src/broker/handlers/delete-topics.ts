import { type Handler } from '../context.ts'

export const handleDeleteTopics: Handler = (ctx, req) => ({
  throttleTimeMs: 0,
  responses: (req.topicNames as string[]).map((name) => ({ name, errorCode: ctx.store.delete(name) })),
})
