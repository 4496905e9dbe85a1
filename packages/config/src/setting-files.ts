import { readFileSync } from 'node:fs'
import { type ConfigProblem } from './config-error.ts'

export type ReadFile = (path: string) => Buffer

const MAX_FILE_BYTES = 1024 * 1024

/**
 * Collects problems while settings that name files are read, so one ConfigError lists them all. Nothing read
 * from a file is ever put in a problem: a problem names the setting, the path and what is wrong.
 */
export class SettingFiles {
  readonly problems: ConfigProblem[] = []
  private readonly read: ReadFile

  constructor(read: ReadFile = readFileSync) {
    this.read = read
  }

  problem(key: string, expected: string, given: string): void {
    this.problems.push({ key, expected, given })
  }

  /** The file's bytes, or undefined (and a problem) when it cannot be read or is empty or too large. */
  file(key: string, path: string): Buffer | undefined {
    let bytes: Buffer
    try {
      bytes = this.read(path)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error'
      this.problem(key, 'a readable file', `${JSON.stringify(path)}, which cannot be read (${code})`)
      return undefined
    }
    if (bytes.length === 0) {
      this.problem(key, 'a non-empty file', `${JSON.stringify(path)}, which is empty`)
      return undefined
    }
    if (bytes.length > MAX_FILE_BYTES) {
      this.problem(key, `a file of at most ${MAX_FILE_BYTES} bytes`, `${JSON.stringify(path)} (${bytes.length} bytes)`)
      return undefined
    }
    return bytes
  }

  /** A PEM file holding at least one block of `label` (CERTIFICATE, PRIVATE KEY). */
  pem(key: string, path: string | undefined, label: 'CERTIFICATE' | 'PRIVATE KEY'): string | undefined {
    if (path === undefined) return undefined
    const bytes = this.file(key, path)
    if (bytes === undefined) return undefined
    const text = bytes.toString('utf8')
    // "PRIVATE KEY" also matches "RSA PRIVATE KEY" and "EC PRIVATE KEY".
    const block = new RegExp(`-----BEGIN [A-Z ]*${label}-----`)
    if (!block.test(text)) {
      this.problem(key, `a PEM file with a ${label} block`, `${JSON.stringify(path)}, which has none`)
      return undefined
    }
    return text
  }

  /**
   * A value given either directly (`key`) or in a mounted file (`key_FILE`, one trailing newline dropped),
   * never both. `required` adds a problem when neither is set.
   */
  value(
    key: string,
    direct: string | undefined,
    path: string | undefined,
    required: string | null,
  ): string | undefined {
    const fileKey = `${key}_FILE`
    if (direct !== undefined && path !== undefined) {
      this.problem(key, `either ${key} or ${fileKey}, not both`, 'both')
      return undefined
    }
    if (direct !== undefined) return direct
    if (path === undefined) {
      if (required !== null) this.problem(key, `${key} or ${fileKey} (${required})`, 'nothing (not set)')
      return undefined
    }
    const bytes = this.file(fileKey, path)
    if (bytes === undefined) return undefined
    const text = bytes.toString('utf8').replace(/\r?\n$/, '')
    if (text.length === 0 || /[\r\n]/.test(text)) {
      this.problem(fileKey, 'a file holding one line', `${JSON.stringify(path)}, which does not`)
      return undefined
    }
    return text
  }
}
