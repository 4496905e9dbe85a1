export { GroupCoordinator, type GroupCoordinatorOptions, type GroupLogFn } from './coordinator.ts'
export { GroupErrorCode } from './group-error-codes.ts'
export type * from './types.ts'
