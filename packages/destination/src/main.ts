import type { TObject } from 'typebox'
import type { Connection, FileConnection, FileDestination, HttpDestination } from './destination.ts'
import { runFileDestination } from './file/run-file-destination.ts'
import { runDestination } from './run-destination.ts'

/**
 * A destination service's whole entry point: configuration from the environment (exit 1 listing every
 * problem), deliver until SIGTERM/SIGINT, then a graceful shutdown. HTTP and file destinations alike.
 *
 *     import { main } from '@lookstream/destination'
 *     import { braze } from './braze.ts'
 *     await main(braze)
 */
export async function main<Config extends TObject, Conn extends Connection, Item>(
  destination: HttpDestination<Config, Conn, Item>,
): Promise<void>
export async function main<Config extends TObject, Conn extends FileConnection>(
  destination: FileDestination<Config, Conn>,
): Promise<void>
export async function main(
  destination: HttpDestination<TObject, Connection, unknown> | FileDestination<TObject, FileConnection>,
): Promise<void> {
  try {
    const running =
      destination.kind === 'file' ? await runFileDestination(destination) : await runDestination(destination)
    running.service.installSignalHandlers()
  } catch (err) {
    const code = (err as { code?: unknown }).code
    const prefix = typeof code === 'string' && code.startsWith('LS_') ? `${code}: ` : ''
    console.error(`${destination.name}: not started: ${prefix}${err instanceof Error ? err.message : String(err)}`)
    process.exitCode = 1
  }
}
