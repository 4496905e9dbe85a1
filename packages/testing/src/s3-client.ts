import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { HARNESS_S3_CREDENTIALS, HARNESS_S3_REGION } from './s3-credentials.ts'

export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
}

/** An S3 client for the harness's S3 (s3rver or MinIO): path-style addressing, test credentials. */
export function s3Client(endpoint: string, credentials: S3Credentials = HARNESS_S3_CREDENTIALS): S3Client {
  return new S3Client({ endpoint, region: HARNESS_S3_REGION, forcePathStyle: true, credentials })
}

/** Creates `bucket` on the S3 at `endpoint` unless it exists already (harness credentials). */
export async function ensureBucket(endpoint: string, bucket: string): Promise<void> {
  const client = s3Client(endpoint)
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }))
  } catch (err) {
    const name = (err as { name?: string }).name
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err
  } finally {
    client.destroy()
  }
}

/** The text (UTF-8) of the object `key` in `bucket` on the S3 at `endpoint` (harness credentials). */
export async function readObjectText(endpoint: string, bucket: string, key: string): Promise<string> {
  const client = s3Client(endpoint)
  try {
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    return (await object.Body?.transformToString('utf8')) ?? ''
  } finally {
    client.destroy()
  }
}
