import { CreateBucketCommand, PutObjectCommand, paginateListObjectsV2 } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { s3Client, startS3, type S3Process } from '../src/index.ts'

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
})
