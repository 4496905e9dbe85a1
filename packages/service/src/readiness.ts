/** A dependency check for /readyz: it fails by throwing (or rejecting) or by returning false. */
export type ReadinessCheck = () => unknown

export interface CheckResult {
  status: 'ok' | 'fail'
  latencyMs: number
  error?: string
}

export interface ReadinessReport {
  status: 'ok' | 'unavailable'
  checks: Record<string, CheckResult>
}

async function runOne(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    const result = await Promise.race([Promise.resolve().then(check), timeout])
    const latencyMs = Math.round((performance.now() - started) * 100) / 100
    return result === false ? { status: 'fail', latencyMs, error: 'check returned false' } : { status: 'ok', latencyMs }
  } catch (err) {
    const latencyMs = Math.round((performance.now() - started) * 100) / 100
    return { status: 'fail', latencyMs, error: err instanceof Error ? err.message : String(err) }
  } finally {
    clearTimeout(timer)
  }
}

/** Runs every check concurrently, each bounded by timeoutMs. */
export async function runReadiness(
  checks: ReadonlyMap<string, ReadinessCheck>,
  timeoutMs: number,
): Promise<ReadinessReport> {
  const entries = await Promise.all(
    [...checks].map(async ([name, check]) => [name, await runOne(check, timeoutMs)] as const),
  )
  const ok = entries.every(([, result]) => result.status === 'ok')
  return { status: ok ? 'ok' : 'unavailable', checks: Object.fromEntries(entries) }
}
