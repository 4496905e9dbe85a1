import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { readStartCommand } from '../src/index.ts'

function packageWith(start: string | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'start-command-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'x', scripts: start === undefined ? {} : { start } }))
  return dir
}

describe('readStartCommand', () => {
  it('reads the environment, Node options and entry of the last step', () => {
    const dir = packageWith('tsc -b && A_B=1:2 C=x=y node --max-old-space-size=1024 --flag dist/src/main.js')
    expect(readStartCommand(dir)).toEqual({
      entry: join(dir, 'dist/src/main.js'),
      nodeArgs: ['--max-old-space-size=1024', '--flag'],
      env: { A_B: '1:2', C: 'x=y' },
    })
  })

  it("reads the ingress's own start script", () => {
    const dir = new URL('../../../services/ingress/', import.meta.url).pathname
    const started = readStartCommand(dir)
    expect(started.entry).toBe(join(dir, 'dist/src/main.js'))
    expect(started.nodeArgs).toContain('--max-old-space-size=1024')
    expect(started.env.GLIBC_TUNABLES).toMatch(/mmap_threshold/)
  })

  it.each([
    ['no start script', undefined, /has no start script/],
    ['a last step that is not node', 'tsc -b && pnpm exec thing', /does not end in a node command/],
    ['no entry', 'node --flag', /expected one entry point/],
    ['arguments after the entry', 'node dist/main.js --port 1', /expected one entry point/],
  ])('refuses %s', (_case, start, error) => {
    expect(() => readStartCommand(packageWith(start))).toThrow(error)
  })
})
