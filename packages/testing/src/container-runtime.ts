import { existsSync } from 'node:fs'

export type Env = Readonly<Record<string, string | undefined>>

/**
 * Whether a container runtime answers. Cheap checks first: without DOCKER_HOST or a docker socket
 * testcontainers is not even loaded; with one, getContainerRuntimeClient() decides (it rejects in
 * milliseconds when nothing answers).
 */
export async function detectContainerRuntime(env: Env = process.env): Promise<boolean> {
  if (!env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false
  try {
    const { getContainerRuntimeClient } = await import('testcontainers')
    await getContainerRuntimeClient()
    return true
  } catch {
    return false
  }
}
