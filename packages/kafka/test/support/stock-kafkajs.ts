import { execFileSync } from 'node:child_process'
import { cpSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

// The published kafkajs 2.2.4, rebuilt from the installed (patched) copy by applying patches/ in reverse, so
// nothing is downloaded. bench/ingress does the same for its second bare-producer ceiling.

const PATCH = new URL('../../../../patches/kafkajs@2.2.4.patch', import.meta.url).pathname
const MARKER = 'lookstream patch'

export function hasGnuPatch(): boolean {
  try {
    return /GNU patch/.test(execFileSync('patch', ['--version'], { encoding: 'utf8' }))
  } catch {
    return false
  }
}

/** Copies the installed kafkajs to `into` and reverses lookstream's patch there; returns the copy's path. */
export function stockKafkajs(into: string): string {
  const installed = dirname(createRequire(import.meta.url).resolve('kafkajs/package.json'))
  cpSync(installed, into, { recursive: true, dereference: true })
  execFileSync('patch', ['--reverse', '--strip=1', '--quiet', `--directory=${into}`, `--input=${PATCH}`])
  const { version } = JSON.parse(readFileSync(join(into, 'package.json'), 'utf8')) as { version: string }
  if (version !== '2.2.4') throw new Error(`expected kafkajs 2.2.4 at ${installed}, found ${version}`)
  const left = readdirSync(join(into, 'src'), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath, e.name))
    .filter((file) => readFileSync(file, 'utf8').includes(MARKER))
  if (left.length > 0) throw new Error(`the reversed patch left lookstream changes in ${left.join(', ')}`)
  return into
}
