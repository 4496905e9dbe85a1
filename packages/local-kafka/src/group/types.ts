// Decoded requests and full responses of the group APIs. Field names are the camelCase form of the field
// names in Apache Kafka's message JSON definitions (clients/src/main/resources/common/message/*.json), so the
// codec tables can name them one to one.
//
// Requests: the decoder fills fields a version does not carry with Kafka's defaults (documented per field).
// Responses: always complete objects; the encoder writes only the fields the requested version has.
// int64 fields are numbers (exact up to 2^53), as the codec reads them.

/** Who sent a request: from the request header and the socket. Optional third argument of the handlers. */
export interface GroupClientContext {
  /** Request header client_id ('' when null). Used for dynamic member ids (`<clientId>-<uuid>`). */
  clientId: string
  /** Remote address of the connection, e.g. '/127.0.0.1' as Kafka shows it, or '127.0.0.1'. */
  clientHost: string
}

// ---- JoinGroup (key 11), v0–5 ----

export interface JoinGroupRequestProtocol {
  name: string
  metadata: Buffer
}

export interface JoinGroupRequest {
  groupId: string
  sessionTimeoutMs: number
  /** v1+. For v0 the decoder sets it to sessionTimeoutMs. */
  rebalanceTimeoutMs: number
  /** '' for a new member. */
  memberId: string
  /** v5+. null for older versions. */
  groupInstanceId: string | null
  protocolType: string
  protocols: JoinGroupRequestProtocol[]
}

export interface JoinGroupResponseMember {
  memberId: string
  /** v5+ */
  groupInstanceId: string | null
  metadata: Buffer
}

export interface JoinGroupResponse {
  /** v2+ */
  throttleTimeMs: number
  errorCode: number
  generationId: number
  protocolName: string
  leader: string
  memberId: string
  members: JoinGroupResponseMember[]
}

// ---- SyncGroup (key 14), v0–3 ----

export interface SyncGroupRequestAssignment {
  memberId: string
  assignment: Buffer
}

export interface SyncGroupRequest {
  groupId: string
  generationId: number
  memberId: string
  /** v3+. null for older versions. */
  groupInstanceId: string | null
  assignments: SyncGroupRequestAssignment[]
}

export interface SyncGroupResponse {
  /** v1+ */
  throttleTimeMs: number
  errorCode: number
  assignment: Buffer
}

// ---- Heartbeat (key 12), v0–3 ----

export interface HeartbeatRequest {
  groupId: string
  generationId: number
  memberId: string
  /** v3+. null for older versions. */
  groupInstanceId: string | null
}

export interface HeartbeatResponse {
  /** v1+ */
  throttleTimeMs: number
  errorCode: number
}

// ---- LeaveGroup (key 13), v0–3 ----

export interface MemberIdentity {
  memberId: string
  groupInstanceId: string | null
}

export interface LeaveGroupRequest {
  groupId: string
  /** v0–2. For v3 the decoder sets ''. */
  memberId: string
  /** v3+. For v0–2 the decoder sets []; the coordinator then uses memberId. */
  members: MemberIdentity[]
}

export interface MemberResponse {
  memberId: string
  groupInstanceId: string | null
  errorCode: number
}

export interface LeaveGroupResponse {
  /** v1+ */
  throttleTimeMs: number
  /** For v3, the top-level error; per-member errors are in members. */
  errorCode: number
  /** v3+ */
  members: MemberResponse[]
}

// ---- OffsetCommit (key 8), v2–7 ----

export interface OffsetCommitRequestPartition {
  partitionIndex: number
  committedOffset: number
  /** v6+. -1 for older versions. */
  committedLeaderEpoch: number
  committedMetadata: string | null
}

export interface OffsetCommitRequestTopic {
  name: string
  partitions: OffsetCommitRequestPartition[]
}

export interface OffsetCommitRequest {
  groupId: string
  /** v1+. -1 means a simple (non-member) commit. */
  generationId: number
  /** v1+. '' for a simple commit. */
  memberId: string
  /** v7+. null for older versions. */
  groupInstanceId: string | null
  /** v2–4. -1 (broker default retention) for other versions. */
  retentionTimeMs: number
  topics: OffsetCommitRequestTopic[]
}

export interface OffsetCommitResponsePartition {
  partitionIndex: number
  errorCode: number
}

export interface OffsetCommitResponseTopic {
  name: string
  partitions: OffsetCommitResponsePartition[]
}

export interface OffsetCommitResponse {
  /** v3+ */
  throttleTimeMs: number
  topics: OffsetCommitResponseTopic[]
}

// ---- OffsetFetch (key 9), v1–5 ----

export interface OffsetFetchRequestTopic {
  name: string
  partitionIndexes: number[]
}

export interface OffsetFetchRequest {
  groupId: string
  /** null (v2+) means every partition the group has committed. */
  topics: OffsetFetchRequestTopic[] | null
}

export interface OffsetFetchResponsePartition {
  partitionIndex: number
  /** -1 when nothing is committed. */
  committedOffset: number
  /** v5+. -1 when unknown. */
  committedLeaderEpoch: number
  metadata: string | null
  errorCode: number
}

export interface OffsetFetchResponseTopic {
  name: string
  partitions: OffsetFetchResponsePartition[]
}

export interface OffsetFetchResponse {
  /** v3+ */
  throttleTimeMs: number
  topics: OffsetFetchResponseTopic[]
  /** v2+ */
  errorCode: number
}

// ---- DescribeGroups (key 15), v0–2 ----

export interface DescribeGroupsRequest {
  groups: string[]
  /** v3+. false for older versions. */
  includeAuthorizedOperations: boolean
}

export interface DescribedGroupMember {
  memberId: string
  /** v4+ */
  groupInstanceId: string | null
  clientId: string
  clientHost: string
  memberMetadata: Buffer
  memberAssignment: Buffer
}

export type GroupStateName = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead'

export interface DescribedGroup {
  errorCode: number
  groupId: string
  /** Kafka's state names; 'Dead' for an unknown group. */
  groupState: GroupStateName
  protocolType: string
  /** The chosen protocol name ('' before the first rebalance). */
  protocolData: string
  members: DescribedGroupMember[]
  /** v3+. -2147483648 when not requested. */
  authorizedOperations: number
}

export interface DescribeGroupsResponse {
  /** v1+ */
  throttleTimeMs: number
  groups: DescribedGroup[]
}

// ---- ListGroups (key 16), v0–2 ----

export interface ListGroupsRequest {
  /** v4+. [] (no filter) for older versions. */
  statesFilter: string[]
}

export interface ListedGroup {
  groupId: string
  protocolType: string
  /** v4+ */
  groupState: GroupStateName
}

export interface ListGroupsResponse {
  /** v1+ */
  throttleTimeMs: number
  errorCode: number
  groups: ListedGroup[]
}

// ---- DeleteGroups (key 42), v0–1 ----

export interface DeleteGroupsRequest {
  groupsNames: string[]
}

export interface DeletableGroupResult {
  groupId: string
  errorCode: number
}

export interface DeleteGroupsResponse {
  throttleTimeMs: number
  results: DeletableGroupResult[]
}
