export { MPARTICLE_PODS, MparticleConfig, MparticleConnectionConfig } from './config.ts'
export { mparticle, toBatch, type MparticleBatch, type MparticleConnection } from './mparticle.ts'
export { percentageUsed, usageFeedback, USAGE_HEADER, type UsageFeedbackOptions } from './usage-feedback.ts'
