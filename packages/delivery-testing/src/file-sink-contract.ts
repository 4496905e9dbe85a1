import type { FileSink } from '@lookstream/destination'
import { randomBytes, randomUUID } from 'node:crypto'
import { PassThrough, Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/** What a sink implementation hands the contract tests: the sink, and ways to look behind it. */
export interface FileSinkUnderTest {
  sink: FileSink
  /** A second sink on the same storage (another replica, or the process after a restart). */
  other: FileSink
  /** The published file's bytes as the storage serves them; undefined when there is none. */
  readPublished(name: string): Promise<Buffer | undefined>
  /** Unfinished uploads (e.g. multipart) of `name` the storage still holds. */
  unfinished(name: string): Promise<number>
  /** Bytes after which `publish` has certainly written part of the file (e.g. one multipart part). */
  partBytes: number
  stop?(): Promise<void>
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const part of stream as AsyncIterable<Buffer>) parts.push(Buffer.from(part))
  return Buffer.concat(parts)
}

async function settleSoon(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * The file sink contract (packages/destination FileSink): staged objects are written whole, a published file is
 * visible only once complete, a failed or interrupted publish leaves nothing visible and nothing unfinished.
 */
export function fileSinkContract(name: string, setup: () => Promise<FileSinkUnderTest>): void {
  describe(`file sink contract: ${name}`, () => {
    let under: FileSinkUnderTest
    beforeAll(async () => {
      under = await setup()
    })
    afterAll(async () => {
      await under.stop?.()
    })

    it('stages objects whole: lists them by prefix, reads them back byte for byte, replaces and deletes them', async () => {
      const { sink } = under
      const prefix = `${randomUUID()}/`
      const first = Buffer.from('h 3\na,b1 2\nx\n\u00e9\u4e2d', 'utf8')
      const second = randomBytes(70_000)
      await sink.putStaged(`${prefix}p~0/1.rows`, first)
      await sink.putStaged(`${prefix}p~1/2.rows`, second)
      await sink.putStaged(`other-${prefix}x.rows`, Buffer.from('x'))
      const listed: string[] = []
      for await (const key of sink.listStaged(prefix)) listed.push(key)
      expect(listed.sort()).toEqual([`${prefix}p~0/1.rows`, `${prefix}p~1/2.rows`])
      expect((await collect(await sink.readStaged(`${prefix}p~0/1.rows`))).equals(first)).toBe(true)
      expect((await collect(await sink.readStaged(`${prefix}p~1/2.rows`))).equals(second)).toBe(true)
      await sink.putStaged(`${prefix}p~0/1.rows`, Buffer.from('replaced'))
      expect((await collect(await sink.readStaged(`${prefix}p~0/1.rows`))).toString()).toBe('replaced')
      await sink.deleteStaged([`${prefix}p~0/1.rows`, `${prefix}p~1/2.rows`, `${prefix}missing.rows`])
      const left: string[] = []
      for await (const key of sink.listStaged(prefix)) left.push(key)
      expect(left).toEqual([])
    })

    it('lists the folders of the staged objects, each once', async () => {
      const { sink, other } = under
      const id = randomUUID()
      await sink.putStaged(`${id}/p~0/1.rows`, Buffer.from('a'))
      await sink.putStaged(`${id}/p~1/2.rows`, Buffer.from('b'))
      await sink.putStaged(`${id}-x/p~0/1.rows`, Buffer.from('c'))
      const folders: string[] = []
      for await (const folder of other.listStagedFolders()) folders.push(folder)
      expect(folders.filter((folder) => folder.startsWith(id)).sort()).toEqual([id, `${id}-x`])
      await sink.deleteStaged([`${id}/p~0/1.rows`, `${id}/p~1/2.rows`, `${id}-x/p~0/1.rows`])
      const left: string[] = []
      for await (const folder of sink.listStagedFolders()) if (folder.startsWith(id)) left.push(folder)
      expect(left).toEqual([])
    })

    it('publishes a small file atomically, recording the send it belongs to', async () => {
      const { sink } = under
      const file = `small-${randomUUID()}.csv`
      const bytes = Buffer.from('user_id,Name\r\nu1,"a, ""b"""\r\n', 'utf8')
      expect(await sink.publishedBy(file)).toBeUndefined()
      await sink.publish(file, Readable.from([bytes]), 'send-a')
      expect(await sink.publishedBy(file)).toBe('send-a')
      expect((await under.readPublished(file))?.equals(bytes)).toBe(true)
      expect(sink.locationOf(file)).toContain(file)
    })

    it('keeps a large file invisible until its body ended, then shows all of it', async () => {
      const { sink } = under
      const file = `large-${randomUUID()}.csv`
      const body = new PassThrough()
      const chunks = [randomBytes(under.partBytes), randomBytes(under.partBytes), randomBytes(1000)]
      const publishing = sink.publish(file, body, 'send-large')
      body.write(chunks[0])
      body.write(chunks[1])
      // Parts are being written, and the upload exists, but no file is visible.
      await settleSoon(async () => (await under.unfinished(file)) > 0)
      expect(await sink.publishedBy(file)).toBeUndefined()
      expect(await under.readPublished(file)).toBeUndefined()
      body.end(chunks[2])
      await publishing
      expect((await under.readPublished(file))?.equals(Buffer.concat(chunks))).toBe(true)
      expect(await under.unfinished(file)).toBe(0)
    })

    it('leaves nothing visible and nothing unfinished when the body fails midway', async () => {
      const { sink } = under
      const file = `failed-${randomUUID()}.csv`
      const body = new PassThrough()
      const publishing = sink.publish(file, body, 'send-failed')
      body.write(randomBytes(under.partBytes))
      body.write(randomBytes(under.partBytes))
      await settleSoon(async () => (await under.unfinished(file)) > 0)
      body.destroy(new Error('rows ran out'))
      await expect(publishing).rejects.toThrow('rows ran out')
      await settleSoon(async () => (await under.unfinished(file)) === 0)
      expect(await sink.publishedBy(file)).toBeUndefined()
      expect(await under.readPublished(file)).toBeUndefined()
    })

    it('aborts what an interrupted publish left unfinished, from another sink', async () => {
      const file = `interrupted-${randomUUID()}.csv`
      const body = new PassThrough()
      // The first publisher stalls mid-file (as a process killed mid-upload would leave it).
      const stalled = under.sink.publish(file, body, 'send-crashed').catch((err: unknown) => err)
      body.write(randomBytes(under.partBytes))
      body.write(randomBytes(under.partBytes))
      await settleSoon(async () => (await under.unfinished(file)) > 0)
      expect(await under.other.abortUnfinished(file)).toBeGreaterThanOrEqual(1)
      expect(await under.unfinished(file)).toBe(0)
      expect(await under.other.abortUnfinished(file)).toBe(0)
      body.destroy(new Error('process gone'))
      await stalled
      expect(await under.other.publishedBy(file)).toBeUndefined()
      // The restarted publisher then writes the whole file.
      const bytes = randomBytes(2048)
      await under.other.publish(file, Readable.from([bytes]), 'send-crashed')
      expect((await under.readPublished(file))?.equals(bytes)).toBe(true)
      expect(await under.unfinished(file)).toBe(0)
    })
  })
}
