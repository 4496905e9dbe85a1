export interface ConfigProblem {
  key: string
  expected: string
  /** What was given, already made safe to print: a quoted value, `missing`, or a redaction note. */
  given: string
}

export class ConfigError extends Error {
  readonly code = 'LS_CONFIG_INVALID'
  readonly problems: readonly ConfigProblem[]

  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => `  ${p.key}: expected ${p.expected}, got ${p.given}`)
    const noun = problems.length === 1 ? 'setting' : 'settings'
    super(`invalid configuration: ${problems.length} ${noun} to fix\n${lines.join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}
