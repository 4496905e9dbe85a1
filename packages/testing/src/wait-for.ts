export interface WaitForOptions {
  timeoutMs?: number
  intervalMs?: number
  /** Says what was awaited, for the timeout error. */
  message?: string
}

/**
 * Polls `condition` until it returns a value other than false/undefined/null (that value is
 * returned) or the deadline passes. A condition that throws counts as "not yet"; its last error is
 * reported on timeout. This is the one approved way for tests to wait.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<Exclude<T, false | null | undefined>> {
  const { timeoutMs = 10_000, intervalMs = 25, message = 'condition' } = options
  const deadline = performance.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await condition()
      if (value !== false && value !== undefined && value !== null) return value as Exclude<T, false | null | undefined>
    } catch (err) {
      lastError = err
    }
    if (performance.now() >= deadline) {
      const reason = lastError instanceof Error ? `: ${lastError.message}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}${reason}`, { cause: lastError })
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
