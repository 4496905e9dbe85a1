export interface GroupClient {
  clientId: string
  clientHost: string
}

// The consumer-group coordinator as the broker sees it (src/group/coordinator.ts implements it). Requests
// are the decoded messages; responses are complete messages for the requested version.
export interface GroupApi {
  load(): Promise<void>
  joinGroup(req: never, apiVersion: number, client?: GroupClient): Promise<object>
  syncGroup(req: never, apiVersion: number, client?: GroupClient): Promise<object>
  heartbeat(req: never, apiVersion: number, client?: GroupClient): object
  leaveGroup(req: never, apiVersion: number, client?: GroupClient): object
  offsetCommit(req: never, apiVersion: number, client?: GroupClient): Promise<object>
  offsetFetch(req: never, apiVersion: number, client?: GroupClient): object
  describeGroups(req: never, apiVersion: number, client?: GroupClient): object
  listGroups(req: never, apiVersion: number, client?: GroupClient): object
  deleteGroups(req: never, apiVersion: number, client?: GroupClient): object
  close(): Promise<void>
}

export type GroupMethod = Exclude<keyof GroupApi, 'load' | 'close'>
