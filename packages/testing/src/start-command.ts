import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/** How a service runs in production, read from its package.json `start` script. */
export interface StartCommand {
  /** Absolute path of the compiled entry point (e.g. …/dist/src/main.js). */
  entry: string
  /** Node options before the entry (e.g. --max-old-space-size=1024). */
  nodeArgs: string[]
  /** NAME=VALUE assignments before `node` (e.g. GLIBC_TUNABLES). */
  env: Record<string, string>
}

/**
 * Reads `<packageDir>/package.json`'s start script, whose last `&&` step must be
 * `[NAME=VALUE …] node [--flag …] <entry>`: benchmarks and `npm start` then run the service exactly as
 * `pnpm start` does, with one place that says how.
 */
export function readStartCommand(packageDir: string): StartCommand {
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { scripts?: { start?: string } }
  const script = pkg.scripts?.start
  if (script === undefined) throw new Error(`${packageDir}/package.json has no start script`)
  const tokens = script.split('&&').at(-1)!.trim().split(/\s+/)
  const env: Record<string, string> = {}
  let at = 0
  for (; at < tokens.length && /^[A-Z_][A-Z0-9_]*=/.test(tokens[at]!); at++) {
    const token = tokens[at]!
    const eq = token.indexOf('=')
    env[token.slice(0, eq)] = token.slice(eq + 1)
  }
  if (tokens[at] !== 'node') throw new Error(`start script of ${packageDir} does not end in a node command: ${script}`)
  const nodeArgs: string[] = []
  for (at++; at < tokens.length && tokens[at]!.startsWith('--'); at++) nodeArgs.push(tokens[at]!)
  const entry = tokens[at]
  if (entry === undefined || at !== tokens.length - 1) {
    throw new Error(`start script of ${packageDir}: expected one entry point after the node options: ${script}`)
  }
  return { entry: join(packageDir, entry), nodeArgs, env }
}

/** Compiles a TypeScript project and its references (`tsc -b <dir>`), as its start script does first. */
export function buildProject(projectDir: string): void {
  const tsc = createRequire(join(dirname(projectDir), 'package.json')).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-b', projectDir], { stdio: 'inherit' })
}
