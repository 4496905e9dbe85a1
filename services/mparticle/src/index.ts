export { MPARTICLE_PODS, MparticleConfig, MparticleConnectionConfig } from './config.ts'
export { mparticle, toBatch, type MparticleBatch, type MparticleConnection } from './mparticle.ts'
