// `pnpm run deploy:tree [OUT]`: the deployable tree the image carries, built without Docker. The Dockerfile's
// build stage runs this same script; test/deploy.test.ts checks the two agree.
//
// OUT (default .deploy/app, must not exist or be empty) receives, for every service in deploy/services.ts and
// the tools the image carries:
//   <folder>/package.json, <folder>/dist/src/**     compiled code only (no sources, tests or type maps)
//   <folder>/node_modules, node_modules/.pnpm        production dependencies from the lockfile, offline
//   bin/<name>                                       one launcher per `bin` of a shipped package
// with the workspace's own dependencies resolved through the same relative links as in the repository.
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { isAbsolute, join, resolve } from 'node:path'
import { APP_DIR, IMAGE_TOOLS, ROOT, services } from '../deploy/services.ts'

interface PackageJson {
  name: string
  dependencies?: Record<string, string>
  bin?: string | Record<string, string>
}

const readPackage = (dir: string): PackageJson =>
  JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as PackageJson

/** Every workspace folder (as pnpm-workspace.yaml lists them: packages/*, services/*, test, bench). */
function workspaceFolders(): string[] {
  const globbed = ['packages', 'services'].flatMap((top) =>
    readdirSync(join(ROOT, top))
      .map((name) => `${top}/${name}`)
      .filter((dir) => existsSync(join(ROOT, dir, 'package.json'))),
  )
  return [...globbed, 'test', 'bench']
}

/** The folders the image carries: the services, the tools, and their production workspace dependencies. */
export function shippedFolders(): string[] {
  const byName = new Map(workspaceFolders().map((dir) => [readPackage(dir).name, dir]))
  const shipped = new Set<string>()
  const visit = (dir: string): void => {
    if (shipped.has(dir)) return
    shipped.add(dir)
    for (const [name, version] of Object.entries(readPackage(dir).dependencies ?? {})) {
      if (!version.startsWith('workspace:')) continue
      const dep = byName.get(name)
      if (dep === undefined) throw new Error(`${dir} depends on ${name}, which is not in the workspace`)
      visit(dep)
    }
  }
  for (const service of services) visit(`services/${service.name}`)
  for (const tool of IMAGE_TOOLS) visit(tool)
  return Array.from(shipped).sort()
}

function run(command: string, args: string[], cwd: string): void {
  execFileSync(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] })
}

/** A launcher per `bin` entry of the shipped packages: bin/<name> runs node on the compiled file. */
function writeLaunchers(out: string, folders: readonly string[]): string[] {
  const names: string[] = []
  for (const dir of folders) {
    const { name, bin } = readPackage(dir)
    if (bin === undefined) continue
    const entries = typeof bin === 'string' ? { [name.replace(/^@[^/]+\//, '')]: bin } : bin
    for (const [command, file] of Object.entries(entries)) {
      const target = join(dir, file).replace(/(^|\/)src\/(.+)\.ts$/, '$1dist/src/$2.js')
      if (!existsSync(join(out, target))) throw new Error(`${dir}: bin ${command} -> ${target} is not in the tree`)
      mkdirSync(join(out, 'bin'), { recursive: true })
      const launcher = join(out, 'bin', command)
      writeFileSync(launcher, `#!/bin/sh\nexec node "${APP_DIR}/${target}" "$@"\n`)
      chmodSync(launcher, 0o755)
      names.push(command)
    }
  }
  return names
}

export interface BuildOptions {
  /** Skip `tsc -b` (the caller built already). */
  skipBuild?: boolean
}

export function buildDeployTree(out: string, options: BuildOptions = {}): { folders: string[]; bins: string[] } {
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} is not empty`)
  const folders = shippedFolders()
  if (!options.skipBuild) {
    const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc')
    run(process.execPath, [tsc, '-b', ...folders], ROOT)
  }

  // A copy of the workspace's manifests, so that the lockfile applies unchanged (--frozen-lockfile).
  mkdirSync(out, { recursive: true })
  for (const file of ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', '.npmrc']) {
    cpSync(join(ROOT, file), join(out, file))
  }
  cpSync(join(ROOT, 'patches'), join(out, 'patches'), { recursive: true })
  for (const dir of workspaceFolders()) {
    mkdirSync(join(out, dir), { recursive: true })
    cpSync(join(ROOT, dir, 'package.json'), join(out, dir, 'package.json'))
  }
  for (const dir of folders) {
    const dist = join(ROOT, dir, 'dist', 'src')
    if (!statSync(dist, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`${dir}/dist/src is missing`)
    cpSync(dist, join(out, dir, 'dist', 'src'), {
      recursive: true,
      filter: (source) => !/\.(d\.ts|d\.ts\.map|js\.map)$/.test(source),
    })
  }

  // Offline from the store the workspace installed into (pnpm would pick another one on another filesystem).
  const store = execFileSync('pnpm', ['store', 'path'], { cwd: ROOT, encoding: 'utf8' }).trim()
  const filters = folders.flatMap((dir) => ['--filter', readPackage(dir).name])
  run(
    'pnpm',
    [
      'install',
      '--prod',
      '--frozen-lockfile',
      '--offline',
      `--store-dir=${store}`,
      '--config.confirmModulesPurge=false',
      ...filters,
    ],
    out,
  )

  // Only what runs stays: the manifests of folders not shipped, and the workspace's own files, go.
  for (const dir of workspaceFolders()) {
    if (!folders.includes(dir)) rmSync(join(out, dir), { recursive: true, force: true })
  }
  for (const top of ['packages', 'services']) {
    if (existsSync(join(out, top)) && readdirSync(join(out, top)).length === 0)
      rmSync(join(out, top), { recursive: true })
  }
  for (const file of ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', '.npmrc', 'patches']) {
    rmSync(join(out, file), { recursive: true, force: true })
  }
  const bins = writeLaunchers(out, folders)
  return { folders, bins }
}

if (import.meta.main) {
  const args = process.argv.slice(2)
  const skipBuild = args.includes('--skip-build')
  const positional = args.filter((a) => !a.startsWith('--'))
  const out = resolve(ROOT, positional[0] ?? '.deploy/app')
  if (!isAbsolute(out)) throw new Error('unreachable')
  try {
    const { folders, bins } = buildDeployTree(out, { skipBuild })
    console.log(`deploy tree in ${out}: ${folders.join(', ')}${bins.length > 0 ? `; bin: ${bins.join(', ')}` : ''}`)
  } catch (err) {
    console.error(`deploy:tree: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  }
}
