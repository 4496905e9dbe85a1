import { fileSinkContract } from '@lookstream/delivery-testing/file-sink-contract'
import { s3Client } from '@lookstream/testing'
import { inject } from 'vitest'
import { createBucket, newSink, readObject, uniqueBucket, unfinishedUploads } from './s3-helpers.ts'

// The file sink contract of packages/destination, held against S3Sink on the harness's S3 through the AWS SDK.
fileSinkContract('S3Sink on s3rver', async () => {
  const endpoint = inject('s3Endpoint')
  const client = s3Client(endpoint)
  const bucket = uniqueBucket()
  await createBucket(client, bucket)
  return {
    sink: newSink(endpoint, bucket),
    other: newSink(endpoint, bucket),
    readPublished: (name) => readObject(client, bucket, `ingest/${name}`),
    unfinished: (name) => unfinishedUploads(client, bucket, `ingest/${name}`),
    partBytes: 5 * 1024 * 1024,
  }
})
