import { runDestination } from '@lookstream/destination'
import { segment } from './segment.ts'

// Composition root: config from the environment (exit 1 listing every problem), then deliver until SIGTERM.
const running = await runDestination(segment)
running.service.installSignalHandlers()
