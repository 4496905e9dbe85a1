// Child-process entry for startS3(): an s3rver on 127.0.0.1 with an ephemeral port.
// Usage: node s3-server-main.ts <directory>
import S3rver from 's3rver'
import { DUMMY_ACCOUNT } from 's3rver/lib/models/account.js'
import { HARNESS_S3_CREDENTIALS } from './s3-credentials.ts'

const directory = process.argv[2]
if (!directory) throw new Error('usage: s3-server-main.ts <directory>')

DUMMY_ACCOUNT.createKeyPair(HARNESS_S3_CREDENTIALS.accessKeyId, HARNESS_S3_CREDENTIALS.secretAccessKey)
const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true })
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
