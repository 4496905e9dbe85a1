import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT, type ServiceEntry } from '../../deploy/services.ts'

interface Schema {
  properties?: Record<string, unknown>
}

/**
 * The environment variables a service reads: the keys of its TypeBox config schemas. The ingress exports
 * IngressConfig; a destination service exports its destination (whose `config` it reads besides the
 * runtime's RuntimeConfig from @lookstream/destination).
 */
export async function envSchemaOf(service: ServiceEntry): Promise<Set<string>> {
  const module = (await import(pathToFileURL(join(ROOT, 'services', service.name, 'src/index.ts')).href)) as Record<
    string,
    unknown
  >
  const schemas: Schema[] = []
  if (service.kind === 'ingress') {
    schemas.push(module.IngressConfig as Schema)
  } else {
    const destination = Object.values(module).find(
      (v): v is { name: string; config: Schema } =>
        typeof v === 'object' && v !== null && (v as { name?: unknown }).name === service.name && 'config' in v,
    )
    if (destination === undefined)
      throw new Error(`services/${service.name} exports no destination named ${service.name}`)
    const runtime = (await import('@lookstream/destination')) as { RuntimeConfig: Schema }
    schemas.push(destination.config, runtime.RuntimeConfig)
  }
  const names = new Set<string>()
  for (const schema of schemas) {
    if (schema?.properties === undefined)
      throw new Error(`services/${service.name}: a config schema without properties`)
    for (const name of Object.keys(schema.properties)) names.add(name)
  }
  return names
}
