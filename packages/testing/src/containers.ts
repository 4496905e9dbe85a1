import { freePort } from './free-port.ts'
import { IMAGES } from './images.ts'
import { HARNESS_S3_CREDENTIALS } from './s3-credentials.ts'

export interface StartedEndpoint {
  endpoint: string
  stop(): Promise<void>
}

export async function startKafkaContainer(): Promise<StartedEndpoint> {
  const { GenericContainer, Wait } = await import('testcontainers')
  // Kafka advertises the address clients must dial, so the host port is chosen before starting.
  const hostPort = await freePort()
  const container = await new GenericContainer(IMAGES.kafka)
    .withExposedPorts({ container: 9092, host: hostPort })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${hostPort}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_NUM_PARTITIONS: '3',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start()
  return { endpoint: `127.0.0.1:${hostPort}`, stop: async () => void (await container.stop()) }
}

export async function startRedisContainer(): Promise<StartedEndpoint> {
  const { GenericContainer, Wait } = await import('testcontainers')
  const container = await new GenericContainer(IMAGES.redis)
    .withExposedPorts(6379)
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start()
  return {
    endpoint: `redis://127.0.0.1:${container.getMappedPort(6379)}`,
    stop: async () => void (await container.stop()),
  }
}

export async function startS3Container(): Promise<StartedEndpoint> {
  const { GenericContainer, Wait } = await import('testcontainers')
  const container = await new GenericContainer(IMAGES.minio)
    .withExposedPorts(9000)
    .withEnvironment({
      MINIO_ROOT_USER: HARNESS_S3_CREDENTIALS.accessKeyId,
      MINIO_ROOT_PASSWORD: HARNESS_S3_CREDENTIALS.secretAccessKey,
    })
    .withCommand(['server', '/data'])
    .withWaitStrategy(Wait.forHttp('/minio/health/live', 9000))
    .start()
  return {
    endpoint: `http://127.0.0.1:${container.getMappedPort(9000)}`,
    stop: async () => void (await container.stop()),
  }
}
