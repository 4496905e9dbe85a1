import { runDestination } from '@lookstream/destination'
import { segment } from './segment.ts'

// Composition root: config from the environment (exit 1 listing every problem), then deliver until SIGTERM.
try {
  const running = await runDestination(segment)
  running.service.installSignalHandlers()
} catch (err) {
  console.error(`segment: not started: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
}
