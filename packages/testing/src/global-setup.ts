// The vitest globalSetup of the whole repository (see vitest.config.ts). Runs once per vitest
// invocation, in vitest's main process, before any test file.
import type { TestProject } from 'vitest/node'
import { resolveHarness } from './harness.ts'
import './provided-context.ts'

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const harness = await resolveHarness({
    env: process.env,
    log: (line) => {
      if (line.includes('no Kafka') || process.env.LOOKSTREAM_HARNESS_VERBOSE === '1') process.stderr.write(`${line}\n`)
    },
  })
  project.provide('kafkaBrokers', harness.kafkaBrokers)
  project.provide('redisUrl', harness.redisUrl)
  project.provide('s3Endpoint', harness.s3Endpoint)
  project.provide('harnessMode', harness.mode)
  project.provide('harnessSources', harness.sources)
  project.provide('kafkaUnavailable', harness.kafkaUnavailable ?? '')
  return () => harness.stop()
}
