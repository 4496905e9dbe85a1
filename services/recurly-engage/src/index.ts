export { RecurlyEngageConfig, RecurlyEngageConnectionConfig } from './config.ts'
export { fileName, recurlyEngage, type RecurlyEngageConnection } from './recurly-engage.ts'
export { ID_COLUMN, csvLine, toRecurlyRow } from './rows.ts'
export { S3Sink, type S3SinkOptions } from './s3-sink.ts'
