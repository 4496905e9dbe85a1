export { RecurlyEngageConfig, RecurlyEngageConnectionConfig } from './config.ts'
export {
  ID_COLUMN,
  csvLine,
  fileName,
  recurlyEngage,
  toRecurlyRow,
  type RecurlyEngageConnection,
} from './recurly-engage.ts'
export { S3Sink, type S3SinkOptions } from './s3-sink.ts'
