import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

// Another version of the ingress (a git ref, e.g. `main`), compiled beside the working copy so that one bench run
// can measure both: `git archive` of its services/ingress into <repo>/.bench-baseline/<ref>/services/ingress,
// with the working copy's node_modules linked in (the workspace packages are the working copy's: only the
// ingress differs) and compiled without type checking (it was checked where it was committed).

const REPO = new URL('../../', import.meta.url).pathname

export interface Baseline {
  ref: string
  commit: string
  /** Compiled entry point (dist/src/main.js). */
  entry: string
  remove(): void
}

export function buildBaseline(ref: string): Baseline {
  const commit = execFileSync('git', ['-C', REPO, 'rev-parse', '--verify', `${ref}^{commit}`], {
    encoding: 'utf8',
  }).trim()
  const root = join(REPO, '.bench-baseline', commit.slice(0, 12))
  rmSync(root, { recursive: true, force: true })
  mkdirSync(root, { recursive: true })
  const archive = execFileSync('git', ['-C', REPO, 'archive', '--format=tar', commit, 'services/ingress'], {
    maxBuffer: 256 * 1024 * 1024,
  })
  execFileSync('tar', ['-x', '-C', root], { input: archive })
  const dir = join(root, 'services/ingress')
  symlinkSync(join(REPO, 'services/ingress/node_modules'), join(dir, 'node_modules'))
  writeFileSync(
    join(dir, 'tsconfig.bench.json'),
    JSON.stringify({
      extends: join(REPO, 'tsconfig.base.json'),
      compilerOptions: { rootDir: '.', outDir: 'dist', composite: false, incremental: false, noCheck: true },
      include: ['src'],
    }),
  )
  const tsc = createRequire(join(REPO, 'package.json')).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.bench.json')], { stdio: 'inherit' })
  return {
    ref,
    commit,
    entry: join(dir, 'dist/src/main.js'),
    remove: () => rmSync(root, { recursive: true, force: true }),
  }
}
