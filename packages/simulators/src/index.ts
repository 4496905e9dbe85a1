export { startSegmentSimulator, segmentDefaults, type SegmentSimulatorOptions } from './segment-simulator.ts'
export {
  startBrazeSimulator,
  brazeDefaults,
  type BrazeSimulator,
  type BrazeSimulatorOptions,
} from './braze-simulator.ts'
export { BrazeProfileStore, type BrazeProfile, type BrazeProfileSeed, type BrazeAlias } from './braze-profile-store.ts'
export {
  startHeapSimulator,
  heapDefaults,
  type HeapSimulator,
  type HeapSimulatorOptions,
  type HeapRateLimits,
} from './heap-simulator.ts'
export {
  startMparticleSimulator,
  mparticleDefaults,
  type MparticleSimulatorOptions,
  type MparticleCredential,
} from './mparticle-simulator.ts'
export {
  startAccountLoad,
  type AccountLoad,
  type AccountLoadOptions,
  type AccountLoadResult,
} from './mparticle-account-load.ts'
export { spawnSimulators, type SpawnedSimulators, type SimulatorName } from './spawn-simulators.ts'
export {
  type CommonSimulatorOptions,
  type Simulator,
  type SimulatorDefinition,
  type SimulatorRequest,
  type SimulatorResponse,
} from './simulator-server.ts'
export {
  SimulatorState,
  type AcceptedItem,
  type RejectedItem,
  type DuplicateItem,
  type RequestLogEntry,
  type SimulatorCounters,
  type BufferOptions,
} from './simulator-state.ts'
export {
  FaultInjector,
  type FaultAction,
  type FaultConfig,
  type FaultDecision,
  type FaultRate,
  type FaultRule,
  type FaultTarget,
  type Outage,
  type ScriptedFault,
} from './fault-injector.ts'
export { WindowRateLimiter, type WindowLimit, type WindowDecision } from './window-rate-limiter.ts'
export { seededRandom } from './seeded-random.ts'
