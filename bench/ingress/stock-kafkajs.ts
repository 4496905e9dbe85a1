import { execFileSync } from 'node:child_process'
import { cpSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

// The published kafkajs, for a second bare-producer ceiling: lookstream installs kafkajs with its own patch
// (docs/adr/0009), so the published code is rebuilt here by copying the installed package and applying the
// patch in reverse. Nothing is downloaded and the install is left as it was.

const PATCH = new URL('../../patches/kafkajs@2.2.4.patch', import.meta.url).pathname
const MARKER = 'lookstream patch'

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.js'))
    .map((entry) => join(entry.parentPath, entry.name))
}

/** Copies the installed kafkajs to `into`, reverses lookstream's patch there and returns the copy's path. */
export function stockKafkajs(into: string): string {
  const installed = dirname(createRequire(import.meta.url).resolve('kafkajs/package.json'))
  cpSync(installed, into, { recursive: true, dereference: true })
  execFileSync('patch', ['--reverse', '--strip=1', '--quiet', `--directory=${into}`, `--input=${PATCH}`])
  const { version } = JSON.parse(readFileSync(join(into, 'package.json'), 'utf8')) as { version: string }
  if (version !== '2.2.4') throw new Error(`expected kafkajs 2.2.4 at ${installed}, found ${version}`)
  const left = filesUnder(join(into, 'src')).filter((file) => readFileSync(file, 'utf8').includes(MARKER))
  if (left.length > 0) throw new Error(`the reversed patch left lookstream changes in ${left.join(', ')}`)
  return into
}
