// Container images for the testcontainers harness mode, pinned in one place (keep in step with
// docker-compose.yml).
export const IMAGES = {
  kafka: 'apache/kafka:4.1.1',
  redis: 'redis:7.4.5-alpine',
  minio: 'minio/minio:RELEASE.2025-04-22T22-12-26Z',
} as const
