// The services lookstream ships, in one list. The image (scripts/deploy-tree.ts), docker-compose.yml,
// .env.example, deploy/prometheus/prometheus.yml and deploy/kubernetes are generated from it
// (`pnpm run deploy:write`, checked by `pnpm run deploy:check` and test/deploy.test.ts). A destination
// service joins the whole deployment with one entry in `services`.
import { readStartCommand } from '@lookstream/testing'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** One environment variable a service reads, as the deployment sets it. */
export interface Setting {
  name: string
  /** A credential: from .env in compose, from a Secret in Kubernetes; never in a ConfigMap or a log. */
  secret: boolean
  /** The value .env.example and the example overlay give it: the simulator's, so that trying it needs no vendor account. */
  example: string
  /** What it is, for .env.example. */
  help: string
  /** The value the example Kubernetes overlay gives it, when not `example` (which names the compose simulator). */
  deployed?: string
}

/** A setting that may be empty (its example or deployed value is ''): the service then uses its default. */
export const mayBeEmpty = (setting: Setting): boolean => setting.example === '' || setting.deployed === ''

export interface ServiceEntry {
  /** Folder under services/ (package @lookstream/<name>); for a destination also its `destination` label. */
  name: string
  kind: 'ingress' | 'destination'
  /** The simulator (packages/simulators) the example settings point at, for destinations. */
  simulator?: 'segment' | 'braze' | 'heap' | 'mparticle'
  settings: Setting[]
}

export const services: ServiceEntry[] = [
  {
    name: 'ingress',
    kind: 'ingress',
    settings: [
      {
        name: 'ACTION_HUB_SECRET',
        secret: true,
        example: 'replace-with-the-output-of-openssl-rand-hex-32',
        help: 'signs and checks the Action Hub tokens Looker sends (at least 16 characters): openssl rand -hex 32',
      },
      {
        name: 'LOOKER_HOSTS',
        secret: false,
        example: 'https://example.looker.com',
        help: 'comma-separated Looker origins allowed in download_url',
      },
      {
        name: 'PUBLIC_URL',
        secret: false,
        example: '',
        help: "the address Looker reaches the ingress at (https://… behind a TLS-terminating proxy): base of the action URLs Looker calls, and https:// makes the history page's cookie Secure; empty: each request's own scheme and Host",
        deployed: 'https://replace-with-the-public-host-of-the-ingress',
      },
      {
        name: 'VIEWER_TOKEN',
        secret: true,
        example: '',
        help: 'read-only token of the send history page /history (at least 32 characters): openssl rand -hex 32; empty: the page is off',
      },
    ],
  },
  {
    name: 'segment',
    kind: 'destination',
    simulator: 'segment',
    settings: [
      {
        name: 'SEGMENT_WRITE_KEY',
        secret: true,
        example: 'segment-write-key',
        help: 'write key of the default Segment connection (the simulator accepts segment-write-key)',
      },
      {
        name: 'SEGMENT_API_URL',
        secret: false,
        example: 'http://simulators:9101',
        help: 'Segment API base URL: the simulator here; https://api.segment.io for a real workspace',
        deployed: 'https://api.segment.io',
      },
    ],
  },
  {
    name: 'braze',
    kind: 'destination',
    simulator: 'braze',
    settings: [
      {
        name: 'BRAZE_API_KEY',
        secret: true,
        example: 'braze-api-key',
        help: 'REST API key of the default Braze connection, with users.track (the simulator accepts braze-api-key)',
      },
      {
        name: 'BRAZE_REST_ENDPOINT',
        secret: false,
        example: 'http://simulators:9102',
        help: "REST endpoint: the simulator here; the instance's (https://rest.iad-01.braze.com, …) for real",
        deployed: 'https://rest.iad-01.braze.com',
      },
      {
        name: 'BRAZE_ALLOWED_HOSTS',
        secret: false,
        example: 'simulators:9102',
        help: 'hosts allowed besides the Braze instances: the simulator here; empty for real',
        deployed: '',
      },
    ],
  },
  {
    name: 'heap',
    kind: 'destination',
    simulator: 'heap',
    settings: [
      {
        name: 'HEAP_APP_ID',
        secret: false,
        example: '1234567890',
        help: 'environment id (app_id) of the default Heap connection (the simulator accepts 1234567890)',
        deployed: 'replace-with-the-environment-id-from-heap',
      },
      {
        name: 'HEAP_API_URL',
        secret: false,
        example: 'http://simulators:9103',
        help: 'Heap API base URL: the simulator here; https://heapanalytics.com (US) or https://c.eu.heap-api.com (EU) for real',
        deployed: 'https://heapanalytics.com',
      },
      {
        name: 'HEAP_ALLOWED_HOSTS',
        secret: false,
        example: 'simulators:9103',
        help: 'hosts requests may go to: the simulator here; empty for the Heap API hosts',
        deployed: '',
      },
    ],
  },
  {
    name: 'mparticle',
    kind: 'destination',
    simulator: 'mparticle',
    settings: [
      {
        name: 'MPARTICLE_API_KEY',
        secret: true,
        example: 'mparticle-key',
        help: 'API key of the default mParticle connection (the simulator accepts mparticle-key)',
      },
      {
        name: 'MPARTICLE_API_SECRET',
        secret: true,
        example: 'mparticle-secret',
        help: 'API secret of the default mParticle connection (the simulator accepts mparticle-secret)',
      },
      {
        name: 'MPARTICLE_API_URL',
        secret: false,
        example: 'http://simulators:9104/v2',
        help: "Events API base URL: the simulator here; the workspace's pod (https://s2s.us1.mparticle.com/v2, …) for real",
        deployed: 'https://s2s.us1.mparticle.com/v2',
      },
    ],
  },
  {
    name: 'recurly-engage',
    kind: 'destination',
    settings: [
      {
        name: 'RECURLY_ENGAGE_S3_BUCKET',
        secret: false,
        example: 'replace-with-the-bucket-from-the-recurly-engage-console',
        help: 'the S3 bucket Recurly Engage gave the account (its console: Settings › User Traits, AWS S3 credentials)',
      },
      {
        name: 'RECURLY_ENGAGE_S3_PREFIX',
        secret: false,
        example: 'ingest/',
        help: 'the Upload Location the console shows (the ingest folder); one traits_<time>.csv per send lands under it',
      },
      {
        name: 'RECURLY_ENGAGE_S3_REGION',
        secret: false,
        example: 'us-east-1',
        help: "the bucket's AWS region",
      },
      {
        name: 'RECURLY_ENGAGE_S3_ACCESS_KEY_ID',
        secret: true,
        example: 'replace-with-the-access-key-id',
        help: 'access key id from the Recurly Engage console',
      },
      {
        name: 'RECURLY_ENGAGE_S3_SECRET_ACCESS_KEY',
        secret: true,
        example: 'replace-with-the-secret-access-key',
        help: 'secret access key from the Recurly Engage console',
      },
    ],
  },
]

/**
 * Settings every service reads, with one value for all of them: in compose from .env like the others, in
 * Kubernetes from the Secret (and ConfigMap, for settings that are not secret) `lookstream-shared`.
 */
export const sharedSettings: Setting[] = [
  {
    name: 'SEND_HISTORY_SECRET',
    secret: true,
    example: 'replace-with-the-output-of-openssl-rand-hex-32',
    help: 'seals the failed rows kept for the send history page, the same value in every service (at least 16 characters): openssl rand -hex 32',
  },
]

/** Ports inside the containers and pods. Destination services all listen on the runtime's default. */
export const INGRESS_PORT = 8080
export const DESTINATION_PORT = 9100

/** The simulators' ports in the compose profile, one per simulator, named in SEGMENT_API_URL and the like. */
export const SIMULATOR_PORTS = { segment: 9101, braze: 9102, heap: 9103, mparticle: 9104 } as const

/** Where the deployable tree and the image keep the application. */
export const APP_DIR = '/app'

export function portOf(service: ServiceEntry): number {
  return service.kind === 'ingress' ? INGRESS_PORT : DESTINATION_PORT
}

/** How the image runs a service: its environment, Node options and compiled entry, relative to APP_DIR. */
export interface ImageCommand {
  env: Record<string, string>
  /** `node …` argv (the container's command). */
  argv: string[]
}

/**
 * The service's package.json `start` script, compiled: the same Node options and environment, with a
 * TypeScript entry (`src/main.ts`, run from source in development) replaced by its compiled `dist/src/main.js`.
 */
export function imageCommand(service: ServiceEntry): ImageCommand {
  const dir = join(ROOT, 'services', service.name)
  const started = readStartCommand(dir)
  const entry = relative(ROOT, started.entry).replace(/(^|\/)src\/(.+)\.ts$/, '$1dist/src/$2.js')
  const nodeArgs = started.nodeArgs.filter((arg) => !arg.startsWith('--conditions='))
  return { env: started.env, argv: ['node', ...nodeArgs, entry] }
}

/** The simulators CLI in the image, for the compose profile that replaces vendor accounts. */
export const SIMULATORS_ENTRY = 'packages/simulators/dist/src/cli.js'

/** Packages the image carries besides the services (their production dependencies come along). */
export const IMAGE_TOOLS = ['packages/simulators', 'packages/kafka'] as const

export const destinations = (): ServiceEntry[] => services.filter((s) => s.kind === 'destination')
