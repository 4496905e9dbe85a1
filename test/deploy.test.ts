import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const prometheusDir = fileURLToPath(new URL('../deploy/prometheus/', import.meta.url))

async function promtool(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('promtool', args, { cwd: prometheusDir })
  return stdout + stderr
}

describe('deploy/prometheus', () => {
  it('has a valid Prometheus configuration', async () => {
    expect(await promtool('check', 'config', 'prometheus.yml')).toContain('SUCCESS')
  })

  it('has valid alert rules', async () => {
    expect(await promtool('check', 'rules', 'alerts.yml')).toMatch(/SUCCESS: \d+ rules found/)
  })

  it('fires each alert exactly as its unit tests expect', async () => {
    expect(await promtool('test', 'rules', 'alerts.test.yml')).toContain('SUCCESS')
  })
})
