import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { freePort, spawnService, type SpawnedService } from '@lookstream/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { parse, parseAllDocuments } from 'yaml'
import {
  CONNECTIONS_SECRET,
  INGRESS_SPOOL,
  SHARED_CONFIG,
  SHUTDOWN_TIMEOUT_MS,
  TERMINATION_GRACE_SECONDS,
  TOPICS_MODE,
  generatedFiles,
} from '../deploy/generate.ts'
import {
  APP_DIR,
  IMAGE_TOOLS,
  ROOT,
  SIMULATORS_ENTRY,
  imageCommand,
  mayBeEmpty,
  portOf,
  services,
  sharedSettings,
  type ServiceEntry,
} from '../deploy/services.ts'
import { validateKubernetesObject } from './support/kubernetes-schemas.ts'
import { envSchemaOf } from './support/service-env.ts'

const run = promisify(execFile)
const prometheusDir = join(ROOT, 'deploy/prometheus')
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')

/** Variables the runtime reads rather than the service: glibc's malloc tunables, Node's own options. */
const RUNTIME_ENV = new Set(['GLIBC_TUNABLES', 'NODE_OPTIONS'])

async function promtool(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('promtool', args, { cwd: prometheusDir })
  return stdout + stderr
}

/** Names a service's environment sets that the service does not read (its TypeBox config schemas). */
async function unreadEnv(service: ServiceEntry, names: Iterable<string>): Promise<string[]> {
  const read = await envSchemaOf(service)
  return [...names].filter((name) => !read.has(name) && !RUNTIME_ENV.has(name))
}

describe('deploy/services.ts', () => {
  const folders = readdirSync(join(ROOT, 'services')).filter((d) =>
    existsSync(join(ROOT, 'services', d, 'package.json')),
  )
  const unlisted = folders.filter((folder) => !services.some((s) => s.name === folder))

  it('names only services that exist in services/, each with a compiled start', () => {
    expect(services.length).toBeGreaterThan(0)
    for (const service of services) {
      expect(folders, service.name).toContain(service.name)
      expect(imageCommand(service).argv.at(-1), service.name).toMatch(/^services\/[a-z-]+\/dist\/src\/[\w-]+\.js$/)
    }
    expect(new Set(services.map((s) => s.name)).size).toBe(services.length)
  })

  // A service that lands before its entry shows here as skipped (naming it), not as a failure of every run.
  it.skipIf(unlisted.length > 0)(
    `deploys every service in services/${unlisted.length > 0 ? ` (skipped: not in deploy/services.ts yet: ${unlisted.join(', ')})` : ''}`,
    () => {
      expect(unlisted).toEqual([])
    },
  )

  it('sets only variables each service reads', async () => {
    for (const service of services) {
      expect(
        await unreadEnv(
          service,
          [...sharedSettings, ...service.settings].map((s) => s.name),
        ),
        service.name,
      ).toEqual([])
    }
  })

  it('every generated file is up to date (pnpm run deploy:write)', async () => {
    const stale = [...(await generatedFiles())].filter(
      ([path, text]) => !existsSync(join(ROOT, path)) || read(path) !== text,
    )
    expect(stale.map(([path]) => path)).toEqual([])
  })
})

// ------------------------------------------------------------------------------------ image and tree

interface Instruction {
  op: string
  args: string
}
interface Stage {
  from: string
  name: string | undefined
  steps: Instruction[]
}

/** The Dockerfile's stages and instructions (continuation lines joined, comments dropped). */
function dockerStages(text: string): { args: Map<string, string>; stages: Stage[] } {
  const args = new Map<string, string>()
  const stages: Stage[] = []
  const lines = text.replace(/\\\n/g, ' ').split('\n')
  for (const raw of lines) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? []
    if (op === undefined || rest === undefined) throw new Error(`unparsed Dockerfile line: ${line}`)
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=')
      args.set(k!, v ?? '')
    } else if (op === 'FROM') {
      const [, image, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest) ?? []
      stages.push({ from: image!.replace(/^\$\{(\w+)\}$/, (_, k: string) => args.get(k) ?? ''), name, steps: [] })
    } else {
      stages.at(-1)!.steps.push({ op: op.toUpperCase(), args: rest })
    }
  }
  return { args, stages }
}

describe('Dockerfile and pnpm run deploy:tree', () => {
  const { stages } = dockerStages(read('Dockerfile'))
  const build = stages.find((s) => s.name === 'build')
  const runtime = stages.at(-1)!
  let tree: string
  const started: SpawnedService[] = []

  beforeAll(() => {
    tree = join(mkdtempSync(join(tmpdir(), 'lookstream-tree-')), 'app')
    // The script exactly as the Dockerfile runs it (it compiles first; `npm test` has compiled already).
    execFileSync('pnpm', ['run', '-s', 'deploy:tree', tree], { cwd: ROOT, stdio: 'pipe' })
  }, 180_000)

  afterAll(async () => {
    for (const service of started.reverse()) await service.stop('SIGTERM', 15_000)
    if (tree) rmSync(join(tree, '..'), { recursive: true, force: true })
  }, 60_000)

  it('has a build stage that installs from the lockfile and runs deploy:tree into the runtime stage', () => {
    expect(build, 'a stage named build').toBeDefined()
    const runs = build!.steps.filter((s) => s.op === 'RUN').map((s) => s.args)
    expect(runs).toContain('pnpm install --frozen-lockfile --offline')
    const treeStep = runs.map((r) => /^pnpm run deploy:tree (\S+)$/.exec(r)).find((m) => m !== null)
    expect(treeStep, 'RUN pnpm run deploy:tree <dir>').toBeTruthy()
    const copy = runtime.steps.find((s) => s.op === 'COPY' && s.args.startsWith('--from=build'))
    expect(copy?.args).toBe(`--from=build ${treeStep![1]} ${APP_DIR}`)
    expect(runtime.steps.filter((s) => s.op === 'WORKDIR').map((s) => s.args)).toEqual([APP_DIR])
    // Only the tree reaches the runtime stage: no other COPY, no RUN that could install anything.
    expect(runtime.steps.filter((s) => s.op === 'COPY' || s.op === 'RUN')).toEqual([copy])
  })

  it('uses the toolchain the repository pins (Node image, pnpm version)', () => {
    const pinnedPnpm = (JSON.parse(read('package.json')) as { packageManager: string }).packageManager
    const nodeVersion = /NODE_VERSION="([\d.]+)"/.exec(read('scripts/bootstrap.sh'))![1]!
    for (const stage of stages) expect(stage.from).toBe(`node:${nodeVersion}-bookworm-slim`)
    expect(build!.steps.some((s) => s.op === 'RUN' && s.args.includes(pinnedPnpm.replace('pnpm@', 'pnpm@')))).toBe(true)
  })

  it('runs as a non-root numeric user, and its default command is the ingress as the compose file runs it', () => {
    const user = runtime.steps.filter((s) => s.op === 'USER').at(-1)?.args
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/)
    const cmd = runtime.steps.filter((s) => s.op === 'CMD').at(-1)?.args
    expect(JSON.parse(cmd!)).toEqual(imageCommand(services.find((s) => s.kind === 'ingress')!).argv)
  })

  it('the tree holds every entry point the compose file and the manifests start, and nothing for development', () => {
    for (const service of services)
      expect(existsSync(join(tree, imageCommand(service).argv.at(-1)!)), service.name).toBe(true)
    expect(existsSync(join(tree, SIMULATORS_ENTRY))).toBe(true)
    for (const tool of IMAGE_TOOLS) expect(existsSync(join(tree, tool, 'package.json')), tool).toBe(true)
    const store = readdirSync(join(tree, 'node_modules/.pnpm'))
    for (const dev of ['typescript@', 'vitest@', 'testcontainers@', 'eslint@', 'prettier@', 's3rver@']) {
      expect(
        store.filter((p) => p.startsWith(dev)),
        dev,
      ).toEqual([])
    }
    expect(existsSync(join(tree, 'packages/testing'))).toBe(false)
    const sources = execFileSync('find', [tree, '-path', '*/node_modules', '-prune', '-o', '-name', '*.ts', '-print'], {
      encoding: 'utf8',
    })
    expect(sources.trim()).toBe('')
  })

  it.skipIf(inject('kafkaUnavailable') !== '')(
    'every service starts from the tree with the example settings and answers /readyz (simulators from the tree too)',
    async () => {
      const simulators = await spawnService(
        join(tree, SIMULATORS_ENTRY),
        {},
        {
          compiled: true,
          cwd: tree,
          args: [
            '--host',
            '127.0.0.1',
            '--segment-port',
            '0',
            '--braze-port',
            '0',
            '--heap-port',
            '0',
            '--mparticle-port',
            '0',
          ],
          listenLine: /^mparticle simulator listening on (http:\/\/\S+)$/,
          readyPath: null,
        },
      )
      started.push(simulators)
      const urls = new Map(
        simulators.process
          .lines()
          .map((line) => /^(\w+) simulator listening on (http:\/\/\S+)$/.exec(line))
          .filter((m) => m !== null)
          .map((m) => [m[1]!, m[2]!]),
      )
      for (const service of services) {
        const command = imageCommand(service)
        const port = await freePort()
        const env: Record<string, string> = {
          ...command.env,
          KAFKA_BROKERS: inject('kafkaBrokers'),
          REDIS_URL: inject('redisUrl'),
          HOST: '127.0.0.1',
          PORT: String(port),
          LOG_LEVEL: 'warn',
        }
        for (const setting of [...sharedSettings, ...service.settings]) {
          // The example values name the compose simulators host: here the simulator runs on loopback.
          env[setting.name] = setting.example.replace(
            /\bsimulators:\d+/,
            () => new URL(urls.get(service.simulator!)!).host,
          )
        }
        const spawned = await spawnService(join(tree, command.argv.at(-1)!), env, {
          compiled: true,
          cwd: tree,
          nodeArgs: command.argv.slice(1, -1),
          readyTimeoutMs: 60_000,
        })
        started.push(spawned)
        const metrics = await (await fetch(`${spawned.url}/metrics`)).text()
        expect(metrics, service.name).toContain(`service="${service.name}"`)
      }
    },
    120_000,
  )
})

// ------------------------------------------------------------------------------------------- compose

interface ComposeService {
  image?: string
  command?: string[]
  volumes?: string[]
  environment?: Record<string, string>
  healthcheck?: { test: string[] }
  depends_on?: Record<string, { condition: string; required?: boolean }>
  profiles?: string[]
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as { services: Record<string, ComposeService> }
  const own = Object.entries(compose.services).filter(([, s]) => s.image?.startsWith('${LOOKSTREAM_IMAGE'))

  it('runs every service of the list from the one image, with the image command', () => {
    for (const service of services) {
      const entry = compose.services[service.name]
      expect(entry, service.name).toBeDefined()
      expect(entry!.image).toBe('${LOOKSTREAM_IMAGE:-lookstream:local}')
      expect(entry!.command).toEqual(imageCommand(service).argv)
    }
    // Every container of the image runs a listed service or the simulators (their entry is in the tree).
    const names = own.map(([name]) => name).sort()
    expect(names).toEqual([...services.map((s) => s.name), 'simulators'].sort())
    expect(compose.services.simulators!.command!.slice(0, 2)).toEqual(['node', SIMULATORS_ENTRY])
    expect(compose.services.simulators!.profiles).toEqual(['simulators'])
  })

  it('uses apache/kafka in KRaft mode, one broker without a topics job: the services create the topics', () => {
    const kafka = compose.services.kafka!
    expect(kafka.image).toMatch(/^apache\/kafka:\d/)
    expect(kafka.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller')
    expect(TOPICS_MODE.compose).toBe('create')
    for (const service of services) {
      expect(compose.services[service.name]!.environment?.KAFKA_TOPICS_MODE, service.name).toBe(TOPICS_MODE.compose)
    }
  })

  it('runs Redis with an append-only file on a volume', () => {
    const redis = compose.services.redis!
    expect(redis.command?.join(' ')).toContain('--appendonly yes --appendfsync everysec')
    expect(redis.volumes).toContainEqual(expect.stringMatching(/^redis-data:\/data$/))
  })

  it('has a health check on every container and depends only on healthy containers', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.healthcheck?.test.length, `${name} health check`).toBeGreaterThan(1)
      for (const [dep, condition] of Object.entries(service.depends_on ?? {})) {
        expect(compose.services[dep], `${name} depends on ${dep}`).toBeDefined()
        expect(condition.condition, `${name} -> ${dep}`).toBe('service_healthy')
      }
    }
    for (const service of services) {
      expect(Object.keys(compose.services[service.name]!.depends_on ?? {}), service.name).toEqual(
        expect.arrayContaining(['kafka', 'redis']),
      )
    }
  })

  it('sets only variables each service reads, and .env.example names every one it requires', async () => {
    const example = new Set(
      read('.env.example')
        .split('\n')
        .filter((l) => /^[A-Z][A-Z0-9_]*=/.test(l))
        .map((l) => l.slice(0, l.indexOf('='))),
    )
    for (const service of services) {
      const environment = compose.services[service.name]!.environment ?? {}
      expect(await unreadEnv(service, Object.keys(environment)), service.name).toEqual([])
      for (const value of Object.values(environment)) {
        for (const [, name] of String(value).matchAll(/\$\{(\w+):\?/g)) expect(example.has(name!), name).toBe(true)
      }
      // Every setting is in .env.example; one whose value may be empty is not required to be non-empty.
      for (const setting of [...sharedSettings, ...service.settings]) {
        expect(example.has(setting.name), setting.name).toBe(true)
        expect(environment[setting.name], setting.name).toBe(
          mayBeEmpty(setting)
            ? `\${${setting.name}:-}`
            : `\${${setting.name}:?set ${setting.name} in .env (see .env.example)}`,
        )
      }
    }
  })

  it('the Prometheus scrape targets are the compose services on their ports', () => {
    const config = parse(read('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: { static_configs: { targets: string[]; labels: { service: string } }[] }[]
    }
    const targets = config.scrape_configs[0]!.static_configs.map((c) => `${c.labels.service}=${c.targets.join()}`)
    expect(targets).toEqual(services.map((s) => `${s.name}=${s.name}:${portOf(s)}`))
  })
})

// ---------------------------------------------------------------------------------------- kubernetes

interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string }
  spec?: Record<string, unknown>
  data?: Record<string, string>
}

const loadAll = (text: string): K8sObject[] =>
  parseAllDocuments(text).map((doc) => {
    if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('; '))
    return doc.toJS() as K8sObject
  })

function baseObjects(): K8sObject[] {
  const kustomization = parse(read('deploy/kubernetes/base/kustomization.yaml')) as { resources: string[] }
  return kustomization.resources.flatMap((file) => loadAll(read(`deploy/kubernetes/base/${file}`)))
}

interface Container {
  name: string
  command: string[]
  env?: { name: string; value: string }[]
  envFrom?: ({ secretRef: { name: string } } | { configMapRef: { name: string } })[]
  volumeMounts?: { name: string; mountPath: string }[]
  resources: { requests: Record<string, string>; limits: Record<string, string> }
  securityContext: Record<string, unknown>
  livenessProbe?: { httpGet: { path: string } }
  readinessProbe?: { httpGet: { path: string } }
}

const podSpec = (o: K8sObject) =>
  (o.spec as { template: { spec: Record<string, unknown> & { containers: Container[] } } }).template.spec

describe('deploy/kubernetes', () => {
  const objects = baseObjects()
  const byKind = (kind: string) => objects.filter((o) => o.kind === kind)

  it('every base object is valid against the Kubernetes schemas', () => {
    expect(objects.length).toBeGreaterThan(0)
    const invalid = objects.flatMap((o) => validateKubernetesObject(o).map((e) => `${o.kind}/${o.metadata.name}: ${e}`))
    expect(invalid).toEqual([])
  })

  it('the schema check refuses a wrong type and a missing required field', () => {
    // (A misspelt field cannot get this far: deploy/generate.ts builds every object with typed constructors.)
    const deployment = structuredClone(byKind('Deployment')[0]!)
    delete (podSpec(deployment).containers[0] as unknown as Record<string, unknown>).name
    expect(validateKubernetesObject(deployment).join()).toMatch(/containers\/0 must have required property name/)
    const pdb = structuredClone(byKind('PodDisruptionBudget')[0]!)
    pdb.spec!.maxUnavailable = { one: 1 }
    expect(validateKubernetesObject(pdb).join()).toMatch(/maxUnavailable/)
    expect(validateKubernetesObject({ apiVersion: 'v1', kind: 'Pod' })).toEqual(['no schema for v1/Pod'])
  })

  it('a Deployment per service: image command, probes, resources, non-root, grace longer than the drain', async () => {
    expect(
      byKind('Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(services.map((s) => `lookstream-${s.name}`).sort())
    for (const service of services) {
      const spec = podSpec(byKind('Deployment').find((d) => d.metadata.name === `lookstream-${service.name}`)!)
      const [container] = spec.containers
      expect(container!.command).toEqual(imageCommand(service).argv)
      expect(container!.livenessProbe?.httpGet.path).toBe('/healthz')
      expect(container!.readinessProbe?.httpGet.path).toBe('/readyz')
      expect(Object.keys(container!.resources.requests).sort()).toEqual(['cpu', 'memory'])
      expect(container!.resources.limits.memory).toBeDefined()
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true })
      expect((spec.securityContext as { runAsUser: number }).runAsUser).toBeGreaterThan(0)
      expect(container!.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
      })
      const drainMs = Number(container!.env?.find((e) => e.name === 'SHUTDOWN_TIMEOUT_MS')?.value)
      expect(drainMs).toBe(SHUTDOWN_TIMEOUT_MS)
      expect(spec.terminationGracePeriodSeconds).toBe(TERMINATION_GRACE_SECONDS)
      expect(TERMINATION_GRACE_SECONDS * 1000).toBeGreaterThan(drainMs)
      expect(
        await unreadEnv(
          service,
          (container!.env ?? []).map((e) => e.name),
        ),
      ).toEqual([])
      expect(container!.envFrom).toContainEqual({ secretRef: { name: CONNECTIONS_SECRET } })
      expect(container!.envFrom).toContainEqual({ secretRef: { name: SHARED_CONFIG } })
      // Only the topics Job creates topics; the services refuse to start on a missing or unsafe one.
      expect(container!.env).toContainEqual({ name: 'KAFKA_TOPICS_MODE', value: 'verify' })
    }
  })

  it('the ingress spools pushed attachments to a volume that holds MAX_CONCURRENT_SENDS bodies of MAX_BODY_BYTES', async () => {
    const { IngressConfig } = (await import(pathToFileURL(join(ROOT, 'services/ingress/src/index.ts')).href)) as {
      IngressConfig: { properties: Record<string, { default?: number }> }
    }
    const maxBody = IngressConfig.properties.MAX_BODY_BYTES!.default!
    const maxSends = IngressConfig.properties.MAX_CONCURRENT_SENDS!.default!
    expect([INGRESS_SPOOL.maxBodyBytes, INGRESS_SPOOL.maxConcurrentSends]).toEqual([maxBody, maxSends])
    const spec = podSpec(byKind('Deployment').find((d) => d.metadata.name === 'lookstream-ingress')!)
    const [container] = spec.containers
    const spoolDir = container!.env?.find((e) => e.name === 'SPOOL_DIR')?.value
    expect(spoolDir).toBe(INGRESS_SPOOL.dir)
    const mount = container!.volumeMounts?.find((m) => m.mountPath === spoolDir)
    const volumes = spec.volumes as { name: string; emptyDir?: { sizeLimit?: string } }[]
    const limit = volumes.find((v) => v.name === mount?.name)?.emptyDir?.sizeLimit
    const [, mebibytes] = /^(\d+)Mi$/.exec(limit ?? '') ?? []
    expect(Number(mebibytes) * 1024 * 1024).toBeGreaterThanOrEqual(maxBody * maxSends)
  })

  it('a PodDisruptionBudget per Deployment and an autoscaler on consumer lag per destination', () => {
    for (const deployment of byKind('Deployment')) {
      const selector = (deployment.spec as { selector: unknown }).selector
      expect(
        byKind('PodDisruptionBudget').find((p) => p.metadata.name === deployment.metadata.name)?.spec?.selector,
      ).toEqual(selector)
    }
    const hpas = byKind('HorizontalPodAutoscaler')
    expect(hpas.map((h) => h.metadata.name).sort()).toEqual(
      services
        .filter((s) => s.kind === 'destination')
        .map((s) => `lookstream-${s.name}`)
        .sort(),
    )
    for (const hpa of hpas) {
      const spec = hpa.spec as {
        scaleTargetRef: { name: string }
        metrics: {
          type: string
          external: { metric: { name: string; selector: { matchLabels: Record<string, string> } } }
        }[]
      }
      expect(spec.scaleTargetRef.name).toBe(hpa.metadata.name)
      expect(spec.metrics[0]!.type).toBe('External')
      expect(spec.metrics[0]!.external.metric.name).toBe('lookstream_destination_consumer_lag')
      expect(`lookstream-${spec.metrics[0]!.external.metric.selector.matchLabels.destination}`).toBe(hpa.metadata.name)
    }
  })

  it('a topics Job runs the topic command with the connection Secret', () => {
    const [job] = byKind('Job')
    const [container] = podSpec(job!).containers
    expect(container!.command).toEqual(['lookstream-topics', 'apply'])
    expect(container!.envFrom).toEqual([{ secretRef: { name: CONNECTIONS_SECRET } }])
    expect(container!.env ?? []).toEqual([])
  })

  it('the example overlay sets only variables the services read, secrets in Secrets', async () => {
    const overlay = 'deploy/kubernetes/overlays/example'
    const kustomization = parse(read(`${overlay}/kustomization.yaml`)) as {
      secretGenerator: { name: string; envs: string[] }[]
      configMapGenerator: { name: string; envs: string[] }[]
    }
    const keys = (file: string) =>
      read(`${overlay}/${file}`)
        .split('\n')
        .filter((l) => /^[A-Z][A-Z0-9_]*=/.test(l))
        .map((l) => l.slice(0, l.indexOf('=')))
    for (const service of services) {
      const name = `lookstream-${service.name}`
      const secret = kustomization.secretGenerator.filter((g) => g.name === name).flatMap((g) => g.envs.flatMap(keys))
      const config = kustomization.configMapGenerator
        .filter((g) => g.name === name)
        .flatMap((g) => g.envs.flatMap(keys))
      const connections = kustomization.secretGenerator
        .filter((g) => g.name === CONNECTIONS_SECRET)
        .flatMap((g) => g.envs.flatMap(keys))
      const sharedSecret = kustomization.secretGenerator
        .filter((g) => g.name === SHARED_CONFIG)
        .flatMap((g) => g.envs.flatMap(keys))
      const sharedConfig = kustomization.configMapGenerator
        .filter((g) => g.name === SHARED_CONFIG)
        .flatMap((g) => g.envs.flatMap(keys))
      expect(
        await unreadEnv(service, [...secret, ...config, ...connections, ...sharedSecret, ...sharedConfig]),
        service.name,
      ).toEqual([])
      expect(sharedSecret.sort()).toEqual(
        sharedSettings
          .filter((s) => s.secret)
          .map((s) => s.name)
          .sort(),
      )
      expect(sharedConfig.sort()).toEqual(
        sharedSettings
          .filter((s) => !s.secret)
          .map((s) => s.name)
          .sort(),
      )
      expect(secret.sort()).toEqual(
        service.settings
          .filter((s) => s.secret)
          .map((s) => s.name)
          .sort(),
      )
      expect(config.sort()).toEqual(
        service.settings
          .filter((s) => !s.secret)
          .map((s) => s.name)
          .sort(),
      )
    }
  })

  const kubectl = (() => {
    try {
      execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  })()

  it.skipIf(!kubectl)(
    'kubectl kustomize renders the example overlay into valid objects (skipped when kubectl is not installed)',
    () => {
      const rendered = loadAll(
        execFileSync('kubectl', ['kustomize', join(ROOT, 'deploy/kubernetes/overlays/example')], { encoding: 'utf8' }),
      )
      const invalid = rendered.flatMap((o) =>
        validateKubernetesObject(o).map((e) => `${o.kind}/${o.metadata.name}: ${e}`),
      )
      expect(invalid).toEqual([])
      const kinds = new Set(rendered.map((o) => o.kind))
      for (const kind of [
        'Namespace',
        'Deployment',
        'Service',
        'PodDisruptionBudget',
        'HorizontalPodAutoscaler',
        'Job',
        'Secret',
      ]) {
        expect(kinds.has(kind), kind).toBe(true)
      }
      // Every Secret and ConfigMap a Deployment names exists under its generated (hashed) name.
      const names = new Set(
        rendered.filter((o) => o.kind === 'Secret' || o.kind === 'ConfigMap').map((o) => o.metadata.name),
      )
      for (const o of rendered.filter((x) => x.kind === 'Deployment' || x.kind === 'Job')) {
        for (const from of podSpec(o).containers.flatMap((c) => c.envFrom ?? [])) {
          const ref = 'secretRef' in from ? from.secretRef.name : from.configMapRef.name
          expect(names.has(ref), `${o.metadata.name} -> ${ref}`).toBe(true)
        }
      }
    },
  )
})

// ---------------------------------------------------------------------------------------- prometheus

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

  const rules = (
    parse(read('deploy/prometheus/alerts.yml')) as {
      groups: { rules: { alert: string; expr: string; annotations: Record<string, string> }[] }[]
    }
  ).groups.flatMap((g) => g.rules)
  const cases = (
    parse(read('deploy/prometheus/alerts.test.yml')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[]
    }
  ).tests.flatMap((t) => t.alert_rule_test)

  it('every alert has a unit test that fires it and one that keeps it quiet', () => {
    expect(rules.length).toBeGreaterThan(0)
    for (const { alert } of rules) {
      const mine = cases.filter((c) => c.alertname === alert)
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} fires`,
      ).toBe(true)
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} stays quiet`,
      ).toBe(true)
    }
    expect(cases.filter((c) => !rules.some((r) => r.alert === c.alertname))).toEqual([])
  })

  it('a service with no scrape target at all alerts: an absent() per service of the list', () => {
    const absentFor = (alert: string) =>
      [...rules.find((r) => r.alert === alert)!.expr.matchAll(/absent\(up\{job="lookstream", service="([a-z-]+)"\}\)/g)]
        .map((m) => m[1])
        .sort()
    expect(absentFor('LookstreamServiceDown')).toEqual(services.map((s) => s.name).sort())
    expect(absentFor('LookstreamRegistryHeartbeatMissing')).toEqual(
      services
        .filter((s) => s.kind === 'destination')
        .map((s) => s.name)
        .sort(),
    )
  })

  it('every alert links its own runbook in docs/runbooks/, and every runbook belongs to an alert', () => {
    const linked = rules.map((r) => r.annotations.runbook_url)
    for (const [i, url] of linked.entries()) {
      expect(url, rules[i]!.alert).toMatch(/^docs\/runbooks\/[a-z-]+\.md$/)
      expect(read(url!), url).toContain(`# ${rules[i]!.alert}`)
    }
    expect(new Set(linked).size).toBe(linked.length)
    const pages = readdirSync(join(ROOT, 'docs/runbooks')).filter((f) => f !== 'README.md')
    expect(pages.map((f) => `docs/runbooks/${f}`).sort()).toEqual([...linked].sort())
    const index = read('docs/runbooks/README.md')
    for (const { alert } of rules) expect(index, alert).toContain(alert)
  })
})
