import { spawn } from 'node:child_process'
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { GroupCoordinator } from '../src/group/coordinator.ts'
import { OffsetsStore } from '../src/group/offsets-store.ts'
import type { OffsetCommitRequest } from '../src/group/types.ts'

// Committed offsets on disk: replay across coordinator instances, torn and corrupt tails, compaction,
// tombstones, and a kill -9 of a process that is committing.

const LOG_FILE = 'group-offsets.log'
const dirs: string[] = []
const open: GroupCoordinator[] = []

afterEach(async () => {
  for (const c of open.splice(0)) await c.close()
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'group-offsets-'))
  dirs.push(dir)
  return dir
}

const warnings: string[] = []

async function coordinatorOn(dataDir: string | undefined): Promise<GroupCoordinator> {
  const c = new GroupCoordinator({
    initialRebalanceDelayMs: 0,
    dataDir,
    log: (level, msg) => {
      if (level === 'warn') warnings.push(msg)
    },
  })
  await c.load()
  open.push(c)
  return c
}

async function reopen(c: GroupCoordinator, dataDir: string): Promise<GroupCoordinator> {
  await c.close()
  open.splice(open.indexOf(c), 1)
  return coordinatorOn(dataDir)
}

function simpleCommit(
  groupId: string,
  offsets: Record<string, number>,
  metadata: string | null = null,
): OffsetCommitRequest {
  return {
    groupId,
    generationId: -1,
    memberId: '',
    groupInstanceId: null,
    retentionTimeMs: -1,
    topics: Object.entries(offsets).map(([key, offset]) => {
      const [name = '', partition = '0'] = key.split(':')
      return {
        name,
        partitions: [
          {
            partitionIndex: Number(partition),
            committedOffset: offset,
            committedLeaderEpoch: 4,
            committedMetadata: metadata,
          },
        ],
      }
    }),
  }
}

function committed(c: GroupCoordinator, groupId: string, topic: string, partition: number): number | undefined {
  return c.offsetFetch({ groupId, topics: [{ name: topic, partitionIndexes: [partition] }] }, 5).topics[0]
    ?.partitions[0]?.committedOffset
}

async function commitOk(c: GroupCoordinator, req: OffsetCommitRequest): Promise<void> {
  const res = await c.offsetCommit(req, 5)
  for (const t of res.topics) for (const p of t.partitions) expect(p.errorCode).toBe(0)
}

describe('offsets store', () => {
  it('persists commits across a new coordinator on the same data dir, with metadata and leader epoch', async () => {
    const dir = await tempDir()
    let c = await coordinatorOn(dir)
    await commitOk(c, simpleCommit('g1', { 'orders:0': 10, 'orders:1': 20 }, 'meta'))
    await commitOk(c, simpleCommit('g2', { 'users:3': 7 }))
    // Acknowledged means written: the line is in the file before the coordinator closes.
    expect((await readFile(join(dir, LOG_FILE), 'utf8')).split('\n').filter(Boolean)).toHaveLength(2)
    c = await reopen(c, dir)
    expect(c.offsetFetch({ groupId: 'g1', topics: null }, 5).topics).toEqual([
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, committedOffset: 10, committedLeaderEpoch: 4, metadata: 'meta', errorCode: 0 },
          { partitionIndex: 1, committedOffset: 20, committedLeaderEpoch: 4, metadata: 'meta', errorCode: 0 },
        ],
      },
    ])
    expect(committed(c, 'g2', 'users', 3)).toBe(7)
    expect(c.listGroups({ statesFilter: [] }, 2).groups).toEqual([
      { groupId: 'g1', protocolType: '', groupState: 'Empty' },
      { groupId: 'g2', protocolType: '', groupState: 'Empty' },
    ])
  })

  it('drops a torn last record on load, keeps everything before it, and appends cleanly afterwards', async () => {
    const dir = await tempDir()
    let c = await coordinatorOn(dir)
    await commitOk(c, simpleCommit('g', { 't:0': 1 }))
    await commitOk(c, simpleCommit('g', { 't:1': 2 }))
    await c.close()
    const path = join(dir, LOG_FILE)
    const intact = await readFile(path)
    // What a kill -9 in the middle of an append leaves: the first part of a line, no newline.
    const [firstLine = ''] = intact.toString('utf8').split('\n')
    await appendFile(path, firstLine.slice(0, 25))
    open.splice(0)
    warnings.length = 0
    c = await coordinatorOn(dir)
    expect(warnings).toContain('group offsets log: dropping a torn or corrupt tail')
    expect(committed(c, 'g', 't', 0)).toBe(1)
    expect(committed(c, 'g', 't', 1)).toBe(2)
    expect((await stat(path)).size).toBeLessThanOrEqual(intact.length)
    await commitOk(c, simpleCommit('g', { 't:2': 3 }))
    c = await reopen(c, dir)
    expect([0, 1, 2].map((p) => committed(c, 'g', 't', p))).toEqual([1, 2, 3])
  })

  it('drops a complete last line whose checksum does not match', async () => {
    const dir = await tempDir()
    let c = await coordinatorOn(dir)
    await commitOk(c, simpleCommit('g', { 't:0': 1 }))
    await commitOk(c, simpleCommit('g', { 't:0': 2 }))
    await c.close()
    const path = join(dir, LOG_FILE)
    const text = await readFile(path, 'utf8')
    await writeFile(path, text.replace('"t",0,2,', '"t",0,9,'))
    open.splice(0)
    c = await coordinatorOn(dir)
    expect(committed(c, 'g', 't', 0)).toBe(1)
  })

  it('compacts superseded commits into one record per group on load', async () => {
    const dir = await tempDir()
    let c = await coordinatorOn(dir)
    for (let i = 0; i < 50; i++) await commitOk(c, simpleCommit('g', { 't:0': i, 't:1': i * 2 }))
    await commitOk(c, simpleCommit('h', { 'u:0': 5 }))
    c = await reopen(c, dir)
    const lines = (await readFile(join(dir, LOG_FILE), 'utf8')).split('\n').filter(Boolean)
    expect(lines).toHaveLength(2)
    expect(committed(c, 'g', 't', 0)).toBe(49)
    expect(committed(c, 'g', 't', 1)).toBe(98)
    expect(committed(c, 'h', 'u', 0)).toBe(5)
    expect(await readdir(dir)).toEqual([LOG_FILE])
  })

  it('compacts while running once the log is mostly superseded, and keeps appending to the new file', async () => {
    const dir = await tempDir()
    const store = new OffsetsStore({ dataDir: dir, log: () => undefined, compactMinRecords: 20 })
    await store.load()
    const lineCounts: number[] = []
    for (let i = 0; i < 30; i++) {
      await store.commit('g', [{ topic: 't', partition: i % 2, offset: i, leaderEpoch: -1, metadata: '' }], 1000 + i)
      lineCounts.push((await readFile(join(dir, LOG_FILE), 'utf8')).split('\n').filter(Boolean).length)
    }
    await store.close()
    // 20 appended lines, compaction to one line right after the 20th is acknowledged, then appends again.
    expect(lineCounts.slice(0, 19)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1))
    expect(lineCounts[20]).toBe(2)
    expect(lineCounts[29]).toBe(11)
    const reloaded = new OffsetsStore({ dataDir: dir, log: () => undefined })
    await reloaded.load()
    expect(reloaded.get('g', 't', 0)).toEqual({ offset: 28, leaderEpoch: -1, metadata: '', commitTimestamp: 1028 })
    expect(reloaded.get('g', 't', 1)).toEqual({ offset: 29, leaderEpoch: -1, metadata: '', commitTimestamp: 1029 })
    await reloaded.close()
  })

  it('applies concurrent commits in request order, batching their writes', async () => {
    const dir = await tempDir()
    let c = await coordinatorOn(dir)
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        c.offsetCommit(simpleCommit('g', { 't:0': i, [`t:${1 + (i % 3)}`]: i }), 5),
      ),
    )
    expect(results.flatMap((r) => r.topics.flatMap((t) => t.partitions.map((p) => p.errorCode)))).toEqual(
      Array.from({ length: 400 }, () => 0),
    )
    const lines = (await readFile(join(dir, LOG_FILE), 'utf8')).split('\n').filter(Boolean)
    expect(lines).toHaveLength(200)
    expect([0, 1, 2, 3].map((p) => committed(c, 'g', 't', p))).toEqual([199, 198, 199, 197])
    c = await reopen(c, dir)
    expect([0, 1, 2, 3].map((p) => committed(c, 'g', 't', p))).toEqual([199, 198, 199, 197])
  })

  it('persists a group deletion', async () => {
    const dir = await tempDir()
    let c = await coordinatorOn(dir)
    await commitOk(c, simpleCommit('gone', { 't:0': 1 }))
    await commitOk(c, simpleCommit('kept', { 't:0': 2 }))
    expect(c.deleteGroups({ groupsNames: ['gone'] }, 1).results[0]?.errorCode).toBe(0)
    c = await reopen(c, dir)
    expect(committed(c, 'gone', 't', 0)).toBe(-1)
    expect(committed(c, 'kept', 't', 0)).toBe(2)
    expect(c.listGroups({ statesFilter: [] }, 2).groups.map((g) => g.groupId)).toEqual(['kept'])
  })

  it('keeps offsets in memory only when there is no data dir', async () => {
    const c = await coordinatorOn(undefined)
    await commitOk(c, simpleCommit('g', { 't:0': 11 }))
    expect(committed(c, 'g', 't', 0)).toBe(11)
  })

  it('keeps every acknowledged commit when the committing process is killed with SIGKILL', async () => {
    const dir = await tempDir()
    const coordinatorUrl = new URL('../src/group/coordinator.ts', import.meta.url).href
    // Commits offset i to three partitions in one request, and prints i once it is acknowledged.
    const script = `
      const { GroupCoordinator } = await import(process.env.COORDINATOR_URL)
      const c = new GroupCoordinator({ initialRebalanceDelayMs: 0, dataDir: process.env.DATA_DIR, log: () => {} })
      await c.load()
      for (let i = 1; ; i++) {
        const partitions = [0, 1, 2].map((p) => ({ partitionIndex: p, committedOffset: i, committedLeaderEpoch: -1, committedMetadata: null }))
        await c.offsetCommit({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1, topics: [{ name: 't', partitions }] }, 5)
        process.stdout.write(i + '\\n')
      }
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, COORDINATOR_URL: coordinatorUrl, DATA_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
    try {
      const deadline = Date.now() + 20_000
      while (!/\n(\d{3,})\n/.test(stdout)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`child did not commit: ${stderr}`)
        await new Promise((r) => setTimeout(r, 20))
      }
      child.kill('SIGKILL')
      await exited
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    const acked = Math.max(...stdout.split('\n').filter(Boolean).map(Number))
    expect(acked).toBeGreaterThanOrEqual(100)
    const c = await coordinatorOn(dir)
    const offsets = [0, 1, 2].map((p) => committed(c, 'g', 't', p) ?? -1)
    // Every partition of one commit lands together, and nothing acknowledged is lost.
    expect(new Set(offsets).size).toBe(1)
    expect(offsets[0]).toBeGreaterThanOrEqual(acked)
  })
})
