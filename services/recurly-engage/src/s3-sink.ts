import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import type { FileSink } from '@lookstream/destination'
import { Readable } from 'node:stream'

export interface S3SinkOptions {
  bucket: string
  /** Folder published files go to ('' or ending in '/'). */
  prefix: string
  /** Folder staged chunks go to ('' or ending in '/'); never inside `prefix`. */
  stagingPrefix: string
  region: string
  endpoint?: string | undefined
  forcePathStyle: boolean
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined
  requestTimeoutMs: number
  /** Part size of multipart publishes (default and S3's minimum: 5 MiB); at most three parts are in memory. */
  partSize?: number
}

const SEND_ID_METADATA = 'lookstream-send-id'
const MIB = 1024 * 1024

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
}

/**
 * The file sink on S3 (or an S3-compatible store): staged chunks are single PutObjects under the staging prefix;
 * a file is published with @aws-sdk/lib-storage (one PutObject when it fits one part, else a multipart upload
 * completed only after its last part), so it is visible only once complete; a failed upload is aborted, and an
 * upload a crash left unfinished is found with ListMultipartUploads and aborted before publishing again.
 */
export class S3Sink implements FileSink {
  readonly client: S3Client
  private readonly options: S3SinkOptions

  constructor(options: S3SinkOptions) {
    this.options = options
    this.client = new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      maxAttempts: 3,
      // throwOnRequestTimeout: without it the SDK only warns when requestTimeout passes and the request waits on
      // forever (a hung S3 request would stall the send for good).
      requestHandler: {
        connectionTimeout: 10_000,
        requestTimeout: options.requestTimeoutMs,
        throwOnRequestTimeout: true,
      },
      // S3-compatible stores differ in the checksums they take: only where S3 requires one.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
  }

  private staged(key: string): string {
    return `${this.options.stagingPrefix}${key}`
  }

  private file(name: string): string {
    return `${this.options.prefix}${name}`
  }

  async putStaged(key: string, body: Buffer): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: this.staged(key),
        Body: body,
        ContentLength: body.length,
        ContentType: 'application/octet-stream',
      }),
    )
  }

  async *listStaged(prefix: string): AsyncIterable<string> {
    const full = this.staged(prefix)
    const strip = this.options.stagingPrefix.length
    for await (const page of paginateListObjectsV2(
      { client: this.client },
      { Bucket: this.options.bucket, Prefix: full },
    )) {
      for (const object of page.Contents ?? []) if (object.Key !== undefined) yield object.Key.slice(strip)
    }
  }

  async *listStagedFolders(): AsyncIterable<string> {
    const strip = this.options.stagingPrefix.length
    for await (const page of paginateListObjectsV2(
      { client: this.client },
      { Bucket: this.options.bucket, Prefix: this.options.stagingPrefix, Delimiter: '/' },
    )) {
      for (const common of page.CommonPrefixes ?? []) {
        if (common.Prefix !== undefined) yield common.Prefix.slice(strip, -1)
      }
    }
  }

  async readStaged(key: string): Promise<NodeJS.ReadableStream> {
    const response = await this.client.send(
      new GetObjectCommand({ Bucket: this.options.bucket, Key: this.staged(key) }),
    )
    if (!(response.Body instanceof Readable)) throw new Error('S3 answered GetObject without a body stream')
    return response.Body
  }

  async deleteStaged(keys: readonly string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += 1000) {
      const batch = keys.slice(start, start + 1000)
      const response = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.options.bucket,
          Delete: { Objects: batch.map((key) => ({ Key: this.staged(key) })), Quiet: true },
        }),
      )
      const failed = (response.Errors ?? []).filter((error) => error.Code !== 'NoSuchKey')
      if (failed.length > 0) throw new Error(`S3 did not delete ${failed.length} staged objects (${failed[0]?.Code})`)
    }
  }

  async publish(name: string, body: NodeJS.ReadableStream, sendId: string): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.options.bucket,
        Key: this.file(name),
        Body: body as Readable,
        ContentType: 'text/csv; charset=utf-8',
        Metadata: { [SEND_ID_METADATA]: sendId },
      },
      partSize: this.options.partSize ?? 5 * MIB,
      queueSize: 2,
      leavePartsOnError: false,
    })
    try {
      await upload.done()
    } catch (err) {
      // lib-storage aborts the multipart upload itself; a body that failed first is the real cause.
      const stream = body as Readable
      if (stream.errored) throw stream.errored
      throw err
    }
  }

  async publishedBy(name: string): Promise<string | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.file(name) }))
      return head.Metadata?.[SEND_ID_METADATA] ?? ''
    } catch (err) {
      if (statusOf(err) === 404) return undefined
      throw err
    }
  }

  async abortUnfinished(name: string): Promise<number> {
    const key = this.file(name)
    const listed = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.options.bucket, Prefix: key }))
    let aborted = 0
    for (const upload of listed.Uploads ?? []) {
      if (upload.Key !== key || upload.UploadId === undefined) continue
      try {
        await this.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: key, UploadId: upload.UploadId }),
        )
        aborted++
      } catch (err) {
        if (statusOf(err) !== 404) throw err
      }
    }
    return aborted
  }

  locationOf(name: string): string {
    return `s3://${this.options.bucket}/${this.file(name)}`
  }
}
