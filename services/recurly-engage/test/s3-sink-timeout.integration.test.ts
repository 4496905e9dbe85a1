import { createServer, type IncomingMessage } from 'node:http'
import { type AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { newSink, uniqueBucket } from './s3-helpers.ts'

// An S3 that takes a request and never answers: RECURLY_ENGAGE_S3_REQUEST_TIMEOUT_MS must end every such request
// with an error (which the file runtime retries), never leave the staging write waiting forever.
async function silentS3(): Promise<{ endpoint: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = []
  const server = createServer((req) => {
    requests.push(req)
    req.resume()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}

describe('S3Sink request timeout', () => {
  it('a staging write to an S3 that never answers fails after requestTimeoutMs per attempt (3 attempts)', async () => {
    const s3 = await silentS3()
    const sink = newSink(s3.endpoint, uniqueBucket(), { requestTimeoutMs: 300 })
    const started = performance.now()
    await expect(sink.putStaged('send-1/chunk-1', Buffer.from('user_id\r\nu-1\r\n'))).rejects.toMatchObject({
      name: 'TimeoutError',
    })
    // Three attempts of 300 ms each, plus the SDK's backoff between them: far below the test's own timeout.
    expect(performance.now() - started).toBeLessThan(10_000)
    expect(s3.requests).toHaveLength(3)
  }, 20_000)
})
