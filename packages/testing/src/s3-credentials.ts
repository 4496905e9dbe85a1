// One key pair for every S3 the harness starts: s3rver (which also keeps its built-in S3RVER/S3RVER
// pair) and MinIO (whose root password must have at least 8 characters). Not a secret.
export const HARNESS_S3_CREDENTIALS = { accessKeyId: 'lookstream', secretAccessKey: 'lookstream-test' } as const
export const HARNESS_S3_REGION = 'us-east-1'
