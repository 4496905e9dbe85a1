export {
  checkRedisAtStart,
  classifyRedisError,
  createRedis,
  type CreateRedisOptions,
  type RedisClient,
} from './create-redis.ts'
export { hashTag } from './hash-tag.ts'
