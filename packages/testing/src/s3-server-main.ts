// Child-process entry for startS3(): an s3rver on 127.0.0.1, on the given port or an ephemeral one.
// Usage: node s3-server-main.ts <directory> [port]
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import S3rver from 's3rver'
import { DUMMY_ACCOUNT } from 's3rver/lib/models/account.js'
import { HARNESS_S3_CREDENTIALS } from './s3-credentials.ts'

const directory = process.argv[2]
if (!directory) throw new Error('usage: s3-server-main.ts <directory> [port]')
const wantedPort = Number(process.argv[3] ?? 0)
if (!Number.isInteger(wantedPort) || wantedPort < 0 || wantedPort > 65535) throw new Error('port: 0 to 65535')

DUMMY_ACCOUNT.createKeyPair(HARNESS_S3_CREDENTIALS.accessKeyId, HARNESS_S3_CREDENTIALS.secretAccessKey)
const server = new S3rver({ address: '127.0.0.1', port: wantedPort, directory, silent: true })
// s3rver answers NotImplemented to ListMultipartUploads and refuses AbortMultipartUpload; both are added here
// (ahead of its router) so tests can prove that no unfinished multipart upload is left behind.
interface MultipartContext {
  method: string
  path: string
  query: Record<string, string | string[] | undefined>
  status: number
  type: string
  body: unknown
}
const store = (server as unknown as { store: { getResourcePath(b: string, k: string | undefined, r: string): string } })
  .store
const escapeXml = (text: string) =>
  text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!)
async function uploadsOf(bucket: string): Promise<{ uploadId: string; key: string; dir: string }[]> {
  const root = store.getResourcePath(bucket, undefined, 'uploads')
  const ids = await readdir(root).catch(() => [] as string[])
  const uploads = []
  for (const uploadId of ids) {
    const dir = join(root, uploadId)
    const key = await readFile(join(dir, 'key'), 'utf8').catch(() => undefined)
    if (key !== undefined) uploads.push({ uploadId, key, dir })
  }
  return uploads
}
const multipart = async (ctx: MultipartContext, next: () => Promise<void>) => {
  const parts = ctx.path.split('/').filter((p) => p !== '')
  const bucket = decodeURIComponent(parts[0] ?? '')
  if (ctx.method === 'GET' && parts.length === 1 && 'uploads' in ctx.query) {
    const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : ''
    const uploads = (await uploadsOf(bucket)).filter((u) => u.key.startsWith(prefix))
    ctx.status = 200
    ctx.type = 'application/xml'
    ctx.body =
      '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult>' +
      `<Bucket>${escapeXml(bucket)}</Bucket><Prefix>${escapeXml(prefix)}</Prefix><IsTruncated>false</IsTruncated>` +
      uploads
        .map((u) => `<Upload><Key>${escapeXml(u.key)}</Key><UploadId>${escapeXml(u.uploadId)}</UploadId></Upload>`)
        .join('') +
      '</ListMultipartUploadsResult>'
    return
  }
  const uploadId = ctx.query.uploadId
  if (ctx.method === 'DELETE' && parts.length > 1 && typeof uploadId === 'string') {
    const upload = (await uploadsOf(bucket)).find((u) => u.uploadId === uploadId)
    if (upload === undefined) {
      ctx.status = 404
      ctx.type = 'application/xml'
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code></Error>'
      return
    }
    await rm(upload.dir, { recursive: true, force: true })
    ctx.status = 204
    ctx.body = ''
    return
  }
  await next()
}
;(server as unknown as { middleware: unknown[] }).middleware.unshift(multipart)

// s3rver's own putObject and putPart pipe the body into the file without listening for the file stream's errors, and
// answer once the body has passed through, before the file is written. One failed write (a key's directory removed
// by a DeleteObject at that moment, say) is an uncaught exception that ends the whole server, and a GetObject right
// after a PutObject may read a file still being written. The same steps with stream.pipeline: a failure reaches the
// request's handler (that request is answered with an error, as S3 would, and the server keeps serving), and the
// answer waits until the file is complete.
interface StoredContent {
  size: number
  md5: string
}
const fileStore = store as unknown as {
  putObject(object: {
    bucket: string
    key: string
    content: Buffer | Readable
    metadata: unknown
  }): Promise<StoredContent>
  putPart(bucket: string, uploadId: string, partNumber: number, content: Readable): Promise<StoredContent>
  putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>
}
async function writeContent(path: string, content: Buffer | Readable): Promise<StoredContent> {
  await mkdir(dirname(path), { recursive: true })
  const md5 = createHash('md5')
  let size = 0
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      md5.update(chunk)
      size += chunk.length
      callback(null, chunk)
    },
  })
  await pipeline(Buffer.isBuffer(content) ? Readable.from([content]) : content, measure, createWriteStream(path))
  return { size, md5: md5.digest('hex') }
}
fileStore.putObject = async (object) => {
  const stored = await writeContent(store.getResourcePath(object.bucket, object.key, 'object'), object.content)
  await fileStore.putMetadata(object.bucket, object.key, object.metadata, stored.md5)
  return stored
}
fileStore.putPart = async (bucket, uploadId, partNumber, content) => {
  const partPath = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber))
  const stored = await writeContent(partPath, content)
  await writeFile(`${partPath}.md5`, stored.md5)
  return stored
}
const { port } = await server.run()
process.stdout.write(`s3rver listening on http://127.0.0.1:${port}\n`)

// If the test process dies without stopping us (SIGKILL, OOM), do not linger as an orphan.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.exit(0)
}, 1_000).unref()

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void server.close().then(() => process.exit(0))
  })
}
