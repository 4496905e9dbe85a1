/**
 * The `--env NAME=VALUE` options of a benchmark as an environment for the services it starts; a pair without a name
 * and an `=` is refused rather than passed on as something else.
 */
export function envPairs(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=')
      if (at <= 0) throw new Error(`--env takes NAME=VALUE, got ${JSON.stringify(pair)}`)
      return [pair.slice(0, at), pair.slice(at + 1)]
    }),
  )
}
