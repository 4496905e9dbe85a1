import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  UploadPartCommand,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3'
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { s3Client, startS3, type S3Process } from '../src/index.ts'

/** The directory named `name` somewhere under `root` (s3rver keeps an upload's files in one named by its id). */
async function findDirectory(root: string, name: string): Promise<string | undefined> {
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue
    const path = join(root, entry.name)
    if (entry.name === name) return path
    const found = await findDirectory(path, name)
    if (found !== undefined) return found
  }
  return undefined
}

describe('startS3 (s3rver in a child process)', () => {
  let s3: S3Process
  beforeAll(async () => {
    s3 = await startS3()
  }, 60_000)
  afterAll(async () => {
    await s3?.stop()
  })

  it('lists more than one page of keys through ListObjectsV2 (continuation tokens)', async () => {
    const client = s3Client(s3.endpoint)
    await client.send(new CreateBucketCommand({ Bucket: 'paged' }))
    const keys = Array.from({ length: 1205 }, (_, i) => `many/${String(i).padStart(5, '0')}`)
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(
        keys.slice(i, i + 50).map((key) => client.send(new PutObjectCommand({ Bucket: 'paged', Key: key, Body: key }))),
      )
    }
    const listed: string[] = []
    let pages = 0
    for await (const page of paginateListObjectsV2({ client }, { Bucket: 'paged', Prefix: 'many/' })) {
      pages++
      for (const object of page.Contents ?? []) listed.push(object.Key!)
    }
    client.destroy()
    expect(pages).toBe(2)
    expect(listed).toEqual(keys)
  }, 120_000)

  it('answers an error when a part cannot be written, and keeps serving (a failed write never takes s3rver down)', async () => {
    const client = s3Client(s3.endpoint)
    await client.send(new CreateBucketCommand({ Bucket: 'parts' }))
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'parts', Key: 'file.csv' }))
    // Part 1's file cannot be created: a directory already holds its name.
    const uploadDir = await findDirectory(s3.directory, UploadId!)
    expect(uploadDir, 'the upload directory s3rver created').toBeDefined()
    await mkdir(join(uploadDir!, '1'))
    let exited: unknown
    void s3.process.exited.then((exit) => (exited = exit))
    const failed = await client
      .send(new UploadPartCommand({ Bucket: 'parts', Key: 'file.csv', UploadId, PartNumber: 1, Body: 'a,b\r\n' }))
      .then(
        () => 'stored',
        (err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode,
      )
    expect(failed).toBe(500)
    // Still serving, and still the same process.
    const head = await client.send(new HeadBucketCommand({ Bucket: 'parts' }))
    expect(head.$metadata.httpStatusCode).toBe(200)
    expect(exited).toBeUndefined()
    client.destroy()
  }, 60_000)

  it('answers an error when an object cannot be written, and keeps serving', async () => {
    const client = s3Client(s3.endpoint)
    await client.send(new CreateBucketCommand({ Bucket: 'objects' }))
    // The object's file cannot be created: a directory already holds its name (s3rver's layout: <key>._S3rver_object).
    await mkdir(join(s3.directory, 'objects', 'blocked.csv._S3rver_object'), { recursive: true })
    let exited: unknown
    void s3.process.exited.then((exit) => (exited = exit))
    const failed = await client
      .send(new PutObjectCommand({ Bucket: 'objects', Key: 'blocked.csv', Body: 'a,b\r\n' }))
      .then(
        () => 'stored',
        (err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode,
      )
    expect(failed).toBe(500)
    await client.send(new PutObjectCommand({ Bucket: 'objects', Key: 'other.csv', Body: 'a,b\r\n' }))
    const read = await client.send(new GetObjectCommand({ Bucket: 'objects', Key: 'other.csv' }))
    expect(await read.Body?.transformToString('utf8')).toBe('a,b\r\n')
    expect(exited).toBeUndefined()
    client.destroy()
  }, 60_000)
})
