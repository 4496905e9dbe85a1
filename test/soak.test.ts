import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

// bench/soak/run.ts with a tiny Look: it starts scripts/start.ts, executes the Look to all five actions at once,
// checks every row at its destination and writes its samples and summary. The full soak (5,000,000 rows) is in
// bench/README.md; this keeps the script working.

const ROOT = join(import.meta.dirname, '..')
const ROWS = 300
const run = promisify(execFile)

interface Summary {
  rows: number
  destinations: Record<string, number | string>[]
  memory: { component: string; service: boolean; peakMiB: number; atMiB: number[]; flat: boolean }[]
}

describe('the soak script', () => {
  const out = mkdtempSync(join(tmpdir(), 'soak-test-'))
  afterAll(() => rmSync(out, { recursive: true, force: true }))

  it(`delivers a ${ROWS}-row Look to all five destinations once each and samples every component`, async () => {
    const { stdout } = await run(
      process.execPath,
      ['--conditions=@lookstream/source', 'bench/soak/run.ts', '--rows', String(ROWS), '--out', out],
      { cwd: ROOT, timeout: 150_000, maxBuffer: 16 * 1024 * 1024 },
    )
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary
    expect(summary.rows).toBe(ROWS)
    expect(summary.destinations.map((d) => d.destination)).toEqual([
      'segment',
      'braze',
      'heap',
      'mparticle',
      'recurly-engage',
    ])
    for (const d of summary.destinations) {
      expect(d, String(d.destination)).toMatchObject({ delivered: ROWS, lost: 0, 'delivered twice': 0 })
    }
    const sampled = summary.memory.map((m) => m.component)
    for (const name of ['kafka', 'redis', 's3', 'ingress', 'segment', 'braze', 'heap', 'mparticle', 'recurly-engage']) {
      expect(sampled).toContain(name)
    }
    for (const m of summary.memory) expect(m.peakMiB, m.component).toBeGreaterThan(0)
    const [header, ...samples] = readFileSync(join(out, 'samples.csv'), 'utf8').trimEnd().split('\n')
    expect(header!.split(',')).toEqual(expect.arrayContaining(['elapsed_s', 'ingress_rss_mib', 'segment_delivered']))
    expect(samples.length).toBeGreaterThan(0)
    expect(stdout).toMatch(/\| recurly-engage \| .* \| 300 \| 0 \| 0 \|/)
  }, 180_000)
})
