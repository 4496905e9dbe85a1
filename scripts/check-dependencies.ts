// `pnpm run deps:check`: every dependency a workspace package.json declares is used by that package: imported
// (import, import type, dynamic import, require) by one of its files, or listed below with the reason it is
// needed without an import. Exits 1 naming each unused one. Run by `npm test`.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const ROOT = new URL('..', import.meta.url).pathname

/** Declared for what they provide besides an import: a type package, a command, a tool's plugin. */
const USED_WITHOUT_IMPORT: Record<string, Record<string, string>> = {
  '.': {
    '@types/node': 'Node types for every project (tsconfig.base.json "types")',
    typescript: 'tsc (pnpm run build / typecheck)',
    eslint: 'eslint (pnpm run lint)',
    '@lookstream/local-kafka': 'the local-kafka command (README, "Other commands")',
  },
}

const SKIP = new Set(['node_modules', 'dist', '.git', '.tools', '.data', '.deploy', '.test-results', 'coverage'])
const CODE = /\.(ts|mts|cts|js|mjs|cjs)$/

function workspaceDirs(): string[] {
  const nested = ['packages', 'services'].flatMap((top) => readdirSync(join(ROOT, top)).map((name) => `${top}/${name}`))
  return ['.', 'test', 'bench', ...nested].filter((dir) => existsSync(join(ROOT, dir, 'package.json')))
}

/** The package's code files; the root's exclude the folders of the other workspace packages. */
function codeFiles(dir: string, nestedPackages: ReadonlySet<string>): string[] {
  const out: string[] = []
  const walk = (path: string) => {
    for (const entry of readdirSync(join(ROOT, path))) {
      if (SKIP.has(entry)) continue
      const child = path === '.' ? entry : `${path}/${entry}`
      if (nestedPackages.has(child)) continue
      if (statSync(join(ROOT, child)).isDirectory()) walk(child)
      else if (CODE.test(entry)) out.push(child)
    }
  }
  walk(dir)
  return out
}

function importPattern(name: string): RegExp {
  const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  return new RegExp(`(?:\\bfrom|\\bimport|\\bimport\\(|\\brequire\\()\\s*['"]${escaped}(?:/[^'"]*)?['"]`)
}

export function unusedDependencies(): string[] {
  const dirs = workspaceDirs()
  const nested = new Set(dirs.filter((d) => d !== '.'))
  const unused: string[] = []
  for (const dir of dirs) {
    const pkg = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string> | undefined
    >
    const text = codeFiles(dir, nested)
      .map((file) => readFileSync(join(ROOT, file), 'utf8'))
      .join('\n')
    for (const kind of ['dependencies', 'devDependencies']) {
      for (const name of Object.keys(pkg[kind] ?? {})) {
        if (USED_WITHOUT_IMPORT[dir]?.[name] !== undefined) continue
        if (!importPattern(name).test(text)) unused.push(`${relative(ROOT, join(ROOT, dir)) || '.'}: ${kind} ${name}`)
      }
    }
  }
  return unused
}

if (import.meta.main) {
  const unused = unusedDependencies()
  if (unused.length > 0) {
    console.error(
      `declared but not used (remove with pnpm remove --filter <package> <name>):\n  ${unused.join('\n  ')}`,
    )
    process.exit(1)
  }
}
