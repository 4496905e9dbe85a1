import {
  CreateBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3'
import { HARNESS_S3_CREDENTIALS } from '@lookstream/testing'
import { randomUUID } from 'node:crypto'
import { S3Sink, type S3SinkOptions } from '../src/s3-sink.ts'

export function uniqueBucket(): string {
  return `re-${randomUUID().slice(0, 12)}`
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
}

export function sinkOptions(endpoint: string, bucket: string, extra: Partial<S3SinkOptions> = {}): S3SinkOptions {
  return {
    bucket,
    prefix: 'ingest/',
    stagingPrefix: 'lookstream-staging/',
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { ...HARNESS_S3_CREDENTIALS },
    requestTimeoutMs: 10_000,
    partSize: 5 * 1024 * 1024,
    ...extra,
  }
}

export function newSink(endpoint: string, bucket: string, extra: Partial<S3SinkOptions> = {}): S3Sink {
  return new S3Sink(sinkOptions(endpoint, bucket, extra))
}

/** An object's bytes, or undefined when there is no such object. */
export async function readObject(client: S3Client, bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    return Buffer.from(await response.Body!.transformToByteArray())
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined
    throw err
  }
}

export async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = []
  let token: string | undefined
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    )
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key)
    token = page.NextContinuationToken
  } while (token !== undefined)
  return keys.sort()
}

export async function unfinishedUploads(client: S3Client, bucket: string, prefix = ''): Promise<number> {
  const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))
  return (listed.Uploads ?? []).length
}
