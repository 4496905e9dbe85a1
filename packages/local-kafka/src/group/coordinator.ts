import { randomUUID } from 'node:crypto'
import {
  allMembersJoined,
  isAwaitingJoin,
  isFencedInstance,
  leaderMembersList,
  maxRebalanceTimeoutMs,
  memberMetadata,
  newGroup,
  sameProtocols,
  selectProtocol,
  supportsProtocols,
  type Group,
  type Member,
} from './group.ts'
import { GroupErrorCode as E } from './group-error-codes.ts'
import { OffsetsStore, type OffsetCommitEntry } from './offsets-store.ts'
import type {
  DeleteGroupsRequest,
  DeleteGroupsResponse,
  DescribedGroup,
  DescribeGroupsRequest,
  DescribeGroupsResponse,
  GroupClientContext,
  HeartbeatRequest,
  HeartbeatResponse,
  JoinGroupRequest,
  JoinGroupResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  ListGroupsRequest,
  ListGroupsResponse,
  MemberIdentity,
  MemberResponse,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetFetchRequest,
  OffsetFetchResponse,
  OffsetFetchResponseTopic,
  SyncGroupRequest,
  SyncGroupResponse,
} from './types.ts'

// The classic consumer-group coordinator (Kafka's GroupCoordinator for a single broker), as a state machine
// per group: Empty → PreparingRebalance → CompletingRebalance → Stable, and Dead once deleted. Everything runs on
// the one event loop: handlers change state synchronously, parked JoinGroup/SyncGroup requests are promises
// resolved later, and timers (session, rebalance, pending sync, initial delay) call back into the same methods.

export type GroupLogFn = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: object) => void

export interface GroupCoordinatorOptions {
  /** Kafka's group.initial.rebalance.delay.ms (3000 there); 0 in tests. */
  initialRebalanceDelayMs: number
  /** Where committed offsets persist; undefined keeps them in memory. */
  dataDir?: string | undefined
  log: GroupLogFn
  /** Wall clock for commit timestamps. Timers always use setTimeout. */
  now?: () => number
  /** Kafka's group.min.session.timeout.ms / group.max.session.timeout.ms (6000 / 1800000). */
  minSessionTimeoutMs?: number
  maxSessionTimeoutMs?: number
  /** Kafka's group.max.size (unbounded there); a bound here so no client can grow a group without limit. */
  maxGroupSize?: number
}

const EMPTY = Buffer.alloc(0)
const NO_CONTEXT: GroupClientContext = { clientId: '', clientHost: '' }
// Kafka's offset.metadata.max.bytes.
const MAX_METADATA_LENGTH = 4096
const MAX_PROTOCOLS = 64
const MAX_CLIENT_ID_LENGTH = 255
const AUTHORIZED_OPERATIONS_OMITTED = -2147483648

export class GroupCoordinator {
  readonly #groups = new Map<string, Group>()
  readonly #store: OffsetsStore
  readonly #log: GroupLogFn
  readonly #now: () => number
  readonly #initialDelayMs: number
  readonly #minSessionTimeoutMs: number
  readonly #maxSessionTimeoutMs: number
  readonly #maxGroupSize: number
  #closed = false

  constructor(opts: GroupCoordinatorOptions) {
    this.#log = opts.log
    this.#now = opts.now ?? Date.now
    this.#initialDelayMs = Math.max(0, opts.initialRebalanceDelayMs)
    this.#minSessionTimeoutMs = opts.minSessionTimeoutMs ?? 6000
    this.#maxSessionTimeoutMs = opts.maxSessionTimeoutMs ?? 1_800_000
    this.#maxGroupSize = opts.maxGroupSize ?? 1000
    this.#store = new OffsetsStore({ dataDir: opts.dataDir, log: opts.log })
  }

  /** Replays the committed offsets; groups that have offsets exist again, Empty. */
  async load(): Promise<void> {
    await this.#store.load()
    for (const groupId of this.#store.groupIds()) {
      if (!this.#groups.has(groupId)) this.#groups.set(groupId, newGroup(groupId))
    }
  }

  // ---- JoinGroup ----

  joinGroup(
    req: JoinGroupRequest,
    apiVersion: number,
    ctx: GroupClientContext = NO_CONTEXT,
  ): Promise<JoinGroupResponse> {
    return Promise.resolve(this.#join(req, apiVersion, ctx))
  }

  #join(
    req: JoinGroupRequest,
    apiVersion: number,
    ctx: GroupClientContext,
  ): JoinGroupResponse | Promise<JoinGroupResponse> {
    if (this.#closed) return joinError(E.COORDINATOR_NOT_AVAILABLE, req.memberId)
    if (req.groupId === '') return joinError(E.INVALID_GROUP_ID, req.memberId)
    if (req.sessionTimeoutMs < this.#minSessionTimeoutMs || req.sessionTimeoutMs > this.#maxSessionTimeoutMs) {
      return joinError(E.INVALID_SESSION_TIMEOUT, req.memberId)
    }
    if (req.protocolType === '' || req.protocols.length === 0 || req.protocols.length > MAX_PROTOCOLS) {
      return joinError(E.INCONSISTENT_GROUP_PROTOCOL, req.memberId)
    }
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    const rebalanceTimeoutMs = req.rebalanceTimeoutMs >= 0 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs
    const request = { ...req, rebalanceTimeoutMs }

    let group = this.#groups.get(req.groupId)
    if (!group) {
      if (req.memberId !== '') return joinError(E.UNKNOWN_MEMBER_ID, req.memberId)
      group = newGroup(req.groupId)
      this.#groups.set(req.groupId, group)
    }
    if (!supportsProtocols(group, req.protocolType, req.protocols, req.memberId)) {
      return joinError(E.INCONSISTENT_GROUP_PROTOCOL, req.memberId)
    }

    if (req.memberId === '') {
      if (req.groupInstanceId !== null) {
        // A static member gets its id at once; a known instance takes over its old member's place.
        const memberId = `${req.groupInstanceId.slice(0, MAX_CLIENT_ID_LENGTH)}-${randomUUID()}`
        const previous = group.staticMembers.get(req.groupInstanceId)
        const old = previous === undefined ? undefined : group.members.get(previous)
        if (old) return this.#replaceStaticMember(group, old, memberId, request, ctx)
        if (group.members.size + group.pendingMembers.size >= this.#maxGroupSize) {
          return joinError(E.GROUP_MAX_SIZE_REACHED, '')
        }
        return this.#addMemberAndRebalance(group, memberId, request, ctx)
      }
      if (group.members.size + group.pendingMembers.size >= this.#maxGroupSize) {
        return joinError(E.GROUP_MAX_SIZE_REACHED, '')
      }
      const memberId = `${ctx.clientId.slice(0, MAX_CLIENT_ID_LENGTH)}-${randomUUID()}`
      if (apiVersion >= 4) {
        // KIP-394: hand out the id first, so a client that times out and retries does not leave a ghost member.
        const g = group
        group.pendingMembers.set(
          memberId,
          setTimeout(() => this.#expirePendingMember(g, memberId), req.sessionTimeoutMs),
        )
        this.#log('debug', 'group member id required', { groupId: group.groupId, memberId })
        return joinError(E.MEMBER_ID_REQUIRED, memberId)
      }
      return this.#addMemberAndRebalance(group, memberId, request, ctx)
    }

    const pendingTimer = group.pendingMembers.get(req.memberId)
    if (pendingTimer !== undefined) {
      clearTimeout(pendingTimer)
      group.pendingMembers.delete(req.memberId)
      return this.#addMemberAndRebalance(group, req.memberId, request, ctx)
    }

    if (isFencedInstance(group, req.groupInstanceId, req.memberId)) {
      return joinError(E.FENCED_INSTANCE_ID, req.memberId)
    }
    const member = group.members.get(req.memberId)
    const unknownInstance = req.groupInstanceId !== null && !group.staticMembers.has(req.groupInstanceId)
    if (!member || unknownInstance) return joinError(E.UNKNOWN_MEMBER_ID, req.memberId)
    switch (group.state) {
      case 'PreparingRebalance':
        return this.#updateMemberAndRebalance(group, member, request)
      case 'CompletingRebalance':
        // A resent join for the generation being completed: answer it again unless the member changed.
        if (sameProtocols(member, req.protocols)) return this.#currentJoinResponse(group, member)
        return this.#updateMemberAndRebalance(group, member, request)
      case 'Stable':
        if (member.memberId === group.leaderId || !sameProtocols(member, req.protocols)) {
          return this.#updateMemberAndRebalance(group, member, request)
        }
        this.#touch(group, member)
        return this.#currentJoinResponse(group, member)
      case 'Empty':
      case 'Dead':
        return joinError(E.UNKNOWN_MEMBER_ID, req.memberId)
    }
  }

  #addMemberAndRebalance(
    group: Group,
    memberId: string,
    req: JoinGroupRequest,
    ctx: GroupClientContext,
  ): Promise<JoinGroupResponse> {
    const member: Member = {
      memberId,
      groupInstanceId: req.groupInstanceId,
      clientId: ctx.clientId,
      clientHost: ctx.clientHost,
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols,
      assignment: EMPTY,
      joinWaiters: [],
      syncWaiters: [],
      sessionTimer: undefined,
    }
    if (group.members.size === 0) group.protocolType = req.protocolType
    group.members.set(memberId, member)
    if (req.groupInstanceId !== null) group.staticMembers.set(req.groupInstanceId, memberId)
    group.leaderId ??= memberId
    group.newMemberAdded = true
    const parked = this.#parkJoin(member)
    this.#log('info', 'group member joined', { groupId: group.groupId, memberId, state: group.state })
    this.#maybePrepareRebalance(group, `member ${memberId} joined`)
    this.#maybeCompleteJoin(group)
    return parked
  }

  #updateMemberAndRebalance(group: Group, member: Member, req: JoinGroupRequest): Promise<JoinGroupResponse> {
    member.protocols = req.protocols
    member.protocolType = req.protocolType
    member.sessionTimeoutMs = req.sessionTimeoutMs
    member.rebalanceTimeoutMs = req.rebalanceTimeoutMs
    const parked = this.#parkJoin(member)
    this.#maybePrepareRebalance(group, `member ${member.memberId} rejoined`)
    this.#maybeCompleteJoin(group)
    return parked
  }

  // KIP-345: a restarted static member replaces its previous incarnation, which is fenced. In a stable group
  // whose protocol choice does not change this needs no rebalance: the member keeps its assignment.
  #replaceStaticMember(
    group: Group,
    old: Member,
    memberId: string,
    req: JoinGroupRequest,
    ctx: GroupClientContext,
  ): JoinGroupResponse | Promise<JoinGroupResponse> {
    const fencedJoin = joinError(E.FENCED_INSTANCE_ID, old.memberId)
    for (const resolve of old.joinWaiters.splice(0)) resolve(fencedJoin)
    for (const resolve of old.syncWaiters.splice(0)) resolve(syncResponse(E.FENCED_INSTANCE_ID, EMPTY))
    this.#stopSessionTimer(old)
    const member: Member = {
      ...old,
      memberId,
      clientId: ctx.clientId,
      clientHost: ctx.clientHost,
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols,
      joinWaiters: [],
      syncWaiters: [],
      sessionTimer: undefined,
    }
    const previousLeader = group.leaderId
    group.members.delete(old.memberId)
    group.members.set(memberId, member)
    if (req.groupInstanceId !== null) group.staticMembers.set(req.groupInstanceId, memberId)
    if (group.leaderId === old.memberId) group.leaderId = memberId
    if (group.pendingSync.delete(old.memberId)) group.pendingSync.add(memberId)
    this.#log('info', 'group static member replaced', {
      groupId: group.groupId,
      groupInstanceId: req.groupInstanceId,
      oldMemberId: old.memberId,
      memberId,
    })
    if (group.state === 'Stable' && selectProtocol(group) === group.protocolName) {
      this.#touch(group, member)
      // The old leader id, so that a replaced leader does not compute an assignment nobody would receive.
      return { ...this.#currentJoinResponse(group, member), leader: previousLeader ?? '', members: [] }
    }
    const parked = this.#parkJoin(member)
    // In CompletingRebalance the leader may be assigning to the old member id: start over.
    if (group.state === 'Stable' || group.state === 'CompletingRebalance') {
      this.#prepareRebalance(group, `static member ${req.groupInstanceId} rejoined`)
    }
    this.#maybeCompleteJoin(group)
    return parked
  }

  #parkJoin(member: Member): Promise<JoinGroupResponse> {
    this.#stopSessionTimer(member)
    return new Promise((resolve) => member.joinWaiters.push(resolve))
  }

  #currentJoinResponse(group: Group, member: Member): JoinGroupResponse {
    return {
      throttleTimeMs: 0,
      errorCode: E.NONE,
      generationId: group.generationId,
      protocolName: group.protocolName ?? '',
      leader: group.leaderId ?? '',
      memberId: member.memberId,
      members: member.memberId === group.leaderId ? leaderMembersList(group) : [],
    }
  }

  #maybePrepareRebalance(group: Group, reason: string): void {
    if (group.state === 'Stable' || group.state === 'CompletingRebalance' || group.state === 'Empty') {
      this.#prepareRebalance(group, reason)
    }
  }

  #prepareRebalance(group: Group, reason: string): void {
    if (group.state === 'CompletingRebalance') {
      // The leader's assignment for this generation will never come: release the parked followers.
      for (const member of group.members.values()) {
        member.assignment = EMPTY
        this.#answerSync(group, member, syncResponse(E.REBALANCE_IN_PROGRESS, EMPTY))
      }
    }
    clearTimeout(group.syncTimer)
    group.syncTimer = undefined
    group.pendingSync.clear()
    const wasEmpty = group.state === 'Empty'
    group.state = 'PreparingRebalance'
    const rebalanceTimeoutMs = maxRebalanceTimeoutMs(group)
    clearTimeout(group.joinTimer)
    if (wasEmpty && this.#initialDelayMs > 0) {
      // Kafka's InitialDelayedJoin: wait for more members, extending while they keep coming, within the
      // rebalance timeout.
      group.initialDelayActive = true
      group.newMemberAdded = false
      this.#scheduleInitialDelay(group, this.#initialDelayMs, Math.max(rebalanceTimeoutMs - this.#initialDelayMs, 0))
    } else {
      group.initialDelayActive = false
      group.joinTimer = setTimeout(() => this.#completeJoin(group), rebalanceTimeoutMs)
    }
    this.#log('info', 'group rebalance started', {
      groupId: group.groupId,
      reason,
      generationId: group.generationId,
      rebalanceTimeoutMs,
    })
  }

  #scheduleInitialDelay(group: Group, delayMs: number, remainingMs: number): void {
    group.joinTimer = setTimeout(() => {
      if (group.newMemberAdded && remainingMs > 0) {
        group.newMemberAdded = false
        const next = Math.min(this.#initialDelayMs, remainingMs)
        this.#scheduleInitialDelay(group, next, remainingMs - next)
        return
      }
      group.initialDelayActive = false
      this.#completeJoin(group)
    }, delayMs)
  }

  #maybeCompleteJoin(group: Group): void {
    if (group.state === 'PreparingRebalance' && !group.initialDelayActive && allMembersJoined(group)) {
      this.#completeJoin(group)
    }
  }

  #completeJoin(group: Group): void {
    clearTimeout(group.joinTimer)
    group.joinTimer = undefined
    group.initialDelayActive = false
    if (group.state !== 'PreparingRebalance') return
    for (const member of [...group.members.values()]) {
      if (!isAwaitingJoin(member)) this.#removeMember(group, member, 'did not rejoin within the rebalance timeout')
    }
    group.generationId++
    if (group.members.size === 0) {
      group.state = 'Empty'
      group.protocolName = null
      group.leaderId = null
      this.#log('info', 'group is empty', { groupId: group.groupId, generationId: group.generationId })
      return
    }
    group.protocolName = selectProtocol(group)
    group.state = 'CompletingRebalance'
    if (group.leaderId === null || !group.members.has(group.leaderId)) {
      group.leaderId = group.members.keys().next().value ?? null
    }
    for (const member of group.members.values()) {
      const response = this.#currentJoinResponse(group, member)
      const waiters = member.joinWaiters.splice(0)
      for (const resolve of waiters) resolve(response)
      group.pendingSync.add(member.memberId)
      this.#touch(group, member)
    }
    const generationId = group.generationId
    group.syncTimer = setTimeout(() => this.#expirePendingSync(group, generationId), maxRebalanceTimeoutMs(group))
    this.#log('info', 'group rebalance completed', {
      groupId: group.groupId,
      generationId,
      protocolName: group.protocolName,
      leader: group.leaderId,
      members: group.members.size,
    })
  }

  // ---- SyncGroup ----

  syncGroup(req: SyncGroupRequest, _apiVersion: number): Promise<SyncGroupResponse> {
    return Promise.resolve(this.#sync(req))
  }

  #sync(req: SyncGroupRequest): SyncGroupResponse | Promise<SyncGroupResponse> {
    if (this.#closed) return syncResponse(E.COORDINATOR_NOT_AVAILABLE, EMPTY)
    if (req.groupId === '') return syncResponse(E.INVALID_GROUP_ID, EMPTY)
    const group = this.#groups.get(req.groupId)
    if (group && isFencedInstance(group, req.groupInstanceId, req.memberId)) {
      return syncResponse(E.FENCED_INSTANCE_ID, EMPTY)
    }
    const member = group?.members.get(req.memberId)
    if (!group || !member) return syncResponse(E.UNKNOWN_MEMBER_ID, EMPTY)
    if (req.generationId !== group.generationId) return syncResponse(E.ILLEGAL_GENERATION, EMPTY)
    switch (group.state) {
      case 'Empty':
      case 'Dead':
        return syncResponse(E.UNKNOWN_MEMBER_ID, EMPTY)
      case 'PreparingRebalance':
        return syncResponse(E.REBALANCE_IN_PROGRESS, EMPTY)
      case 'CompletingRebalance': {
        this.#stopSessionTimer(member)
        const parked = new Promise<SyncGroupResponse>((resolve) => member.syncWaiters.push(resolve))
        this.#syncDone(group, member)
        if (member.memberId === group.leaderId) {
          const assignments = new Map(req.assignments.map((a) => [a.memberId, a.assignment]))
          for (const m of group.members.values()) m.assignment = assignments.get(m.memberId) ?? EMPTY
          group.state = 'Stable'
          for (const m of group.members.values()) this.#answerSync(group, m, syncResponse(E.NONE, m.assignment))
          this.#log('info', 'group stable', { groupId: group.groupId, generationId: group.generationId })
        }
        return parked
      }
      case 'Stable':
        this.#syncDone(group, member)
        this.#touch(group, member)
        return syncResponse(E.NONE, member.assignment)
    }
  }

  #answerSync(group: Group, member: Member, response: SyncGroupResponse): void {
    if (member.syncWaiters.length === 0) return
    const waiters = member.syncWaiters.splice(0)
    for (const resolve of waiters) resolve(response)
    this.#touch(group, member)
  }

  #syncDone(group: Group, member: Member): void {
    group.pendingSync.delete(member.memberId)
    if (group.pendingSync.size === 0) {
      clearTimeout(group.syncTimer)
      group.syncTimer = undefined
    }
  }

  #expirePendingSync(group: Group, generationId: number): void {
    group.syncTimer = undefined
    if (group.generationId !== generationId) return
    if (group.state !== 'CompletingRebalance' && group.state !== 'Stable') return
    if (group.pendingSync.size === 0) return
    const missing = [...group.pendingSync]
    group.pendingSync.clear()
    for (const memberId of missing) {
      const member = group.members.get(memberId)
      if (member) this.#removeMember(group, member, 'did not sync within the rebalance timeout')
    }
    this.#prepareRebalance(group, `members ${missing.join(', ')} did not sync`)
    this.#maybeCompleteJoin(group)
  }

  // ---- Heartbeat and sessions ----

  heartbeat(req: HeartbeatRequest, _apiVersion: number): HeartbeatResponse {
    if (this.#closed) return { throttleTimeMs: 0, errorCode: E.COORDINATOR_NOT_AVAILABLE }
    if (req.groupId === '') return { throttleTimeMs: 0, errorCode: E.INVALID_GROUP_ID }
    const group = this.#groups.get(req.groupId)
    if (group && isFencedInstance(group, req.groupInstanceId, req.memberId)) {
      return { throttleTimeMs: 0, errorCode: E.FENCED_INSTANCE_ID }
    }
    const member = group?.members.get(req.memberId)
    if (!group || !member) return { throttleTimeMs: 0, errorCode: E.UNKNOWN_MEMBER_ID }
    if (req.generationId !== group.generationId) return { throttleTimeMs: 0, errorCode: E.ILLEGAL_GENERATION }
    this.#touch(group, member)
    // PreparingRebalance is how members of a stable group learn that they must rejoin.
    const errorCode = group.state === 'PreparingRebalance' ? E.REBALANCE_IN_PROGRESS : E.NONE
    return { throttleTimeMs: 0, errorCode }
  }

  /** Restarts the member's session timer, unless a parked join or sync keeps it alive anyway. */
  #touch(group: Group, member: Member): void {
    this.#stopSessionTimer(member)
    if (member.joinWaiters.length > 0 || member.syncWaiters.length > 0) return
    member.sessionTimer = setTimeout(() => {
      member.sessionTimer = undefined
      if (group.members.get(member.memberId) !== member) return
      this.#log('info', 'group member session expired', {
        groupId: group.groupId,
        memberId: member.memberId,
        sessionTimeoutMs: member.sessionTimeoutMs,
      })
      this.#removeMemberAndUpdateGroup(group, member, 'session timeout')
    }, member.sessionTimeoutMs)
  }

  #stopSessionTimer(member: Member): void {
    clearTimeout(member.sessionTimer)
    member.sessionTimer = undefined
  }

  #expirePendingMember(group: Group, memberId: string): void {
    if (!group.pendingMembers.delete(memberId)) return
    this.#log('debug', 'group pending member expired', { groupId: group.groupId, memberId })
    this.#maybeCompleteJoin(group)
  }

  /** Drops a member without deciding what the group does next. */
  #removeMember(group: Group, member: Member, reason: string): void {
    this.#stopSessionTimer(member)
    const gone = joinError(E.UNKNOWN_MEMBER_ID, member.memberId)
    for (const resolve of member.joinWaiters.splice(0)) resolve(gone)
    for (const resolve of member.syncWaiters.splice(0)) resolve(syncResponse(E.UNKNOWN_MEMBER_ID, EMPTY))
    group.members.delete(member.memberId)
    group.pendingSync.delete(member.memberId)
    if (member.groupInstanceId !== null && group.staticMembers.get(member.groupInstanceId) === member.memberId) {
      group.staticMembers.delete(member.groupInstanceId)
    }
    if (group.leaderId === member.memberId) {
      const next = [...group.members.values()].find(isAwaitingJoin) ?? group.members.values().next().value
      group.leaderId = next?.memberId ?? null
    }
    this.#log('info', 'group member removed', { groupId: group.groupId, memberId: member.memberId, reason })
  }

  #removeMemberAndUpdateGroup(group: Group, member: Member, reason: string): void {
    this.#removeMember(group, member, reason)
    if (group.state === 'Stable' || group.state === 'CompletingRebalance') {
      this.#prepareRebalance(group, `member ${member.memberId} left (${reason})`)
    }
    this.#maybeCompleteJoin(group)
  }

  // ---- LeaveGroup ----

  leaveGroup(req: LeaveGroupRequest, apiVersion: number): LeaveGroupResponse {
    const identities: MemberIdentity[] =
      apiVersion >= 3 ? req.members : [{ memberId: req.memberId, groupInstanceId: null }]
    const respond = (topLevel: number, results: MemberResponse[]): LeaveGroupResponse => {
      if (apiVersion >= 3) return { throttleTimeMs: 0, errorCode: topLevel, members: results }
      // v0–2 carry one member: its error is the top-level error.
      const memberError = results.find((r) => r.errorCode !== E.NONE)?.errorCode ?? E.NONE
      return { throttleTimeMs: 0, errorCode: topLevel !== E.NONE ? topLevel : memberError, members: [] }
    }
    if (this.#closed) return respond(E.COORDINATOR_NOT_AVAILABLE, [])
    if (req.groupId === '') return respond(E.INVALID_GROUP_ID, [])
    const group = this.#groups.get(req.groupId)
    const results = identities.map((identity): MemberResponse => {
      const result = (errorCode: number): MemberResponse => ({ ...identity, errorCode })
      if (!group) return result(E.UNKNOWN_MEMBER_ID)
      const pendingTimer = group.pendingMembers.get(identity.memberId)
      if (pendingTimer !== undefined) {
        clearTimeout(pendingTimer)
        group.pendingMembers.delete(identity.memberId)
        this.#maybeCompleteJoin(group)
        return result(E.NONE)
      }
      // A static member may leave by its instance id alone.
      const memberId =
        identity.memberId === '' && identity.groupInstanceId !== null
          ? (group.staticMembers.get(identity.groupInstanceId) ?? '')
          : identity.memberId
      if (isFencedInstance(group, identity.groupInstanceId, memberId)) return result(E.FENCED_INSTANCE_ID)
      const member = group.members.get(memberId)
      if (!member) return result(E.UNKNOWN_MEMBER_ID)
      this.#removeMemberAndUpdateGroup(group, member, 'left the group')
      return result(E.NONE)
    })
    return respond(E.NONE, results)
  }

  // ---- OffsetCommit / OffsetFetch ----

  async offsetCommit(req: OffsetCommitRequest, _apiVersion: number): Promise<OffsetCommitResponse> {
    const all = (errorCode: number): OffsetCommitResponse => ({
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
      })),
    })
    if (this.#closed) return all(E.COORDINATOR_NOT_AVAILABLE)
    let group = this.#groups.get(req.groupId)
    if (!group) {
      // A group that does not exist accepts only "simple" commits, which do not use group management.
      if (req.generationId >= 0) return all(E.ILLEGAL_GENERATION)
      group = newGroup(req.groupId)
      this.#groups.set(req.groupId, group)
    } else if (isFencedInstance(group, req.groupInstanceId, req.memberId)) {
      return all(E.FENCED_INSTANCE_ID)
    } else if (!(req.generationId < 0 && group.state === 'Empty')) {
      const member = group.members.get(req.memberId)
      if (!member) return all(E.UNKNOWN_MEMBER_ID)
      if (req.generationId !== group.generationId) return all(E.ILLEGAL_GENERATION)
      if (group.state === 'CompletingRebalance') return all(E.REBALANCE_IN_PROGRESS)
      this.#touch(group, member)
    }

    const entries: OffsetCommitEntry[] = []
    const response: OffsetCommitResponse = { throttleTimeMs: 0, topics: [] }
    for (const topic of req.topics) {
      const partitions = topic.partitions.map((p) => {
        const metadata = p.committedMetadata ?? ''
        if (metadata.length > MAX_METADATA_LENGTH) {
          return { partitionIndex: p.partitionIndex, errorCode: E.OFFSET_METADATA_TOO_LARGE }
        }
        entries.push({
          topic: topic.name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          leaderEpoch: p.committedLeaderEpoch,
          metadata,
        })
        const accepted: { partitionIndex: number; errorCode: number } = {
          partitionIndex: p.partitionIndex,
          errorCode: E.NONE,
        }
        return accepted
      })
      response.topics.push({ name: topic.name, partitions })
    }
    if (entries.length === 0) return response
    try {
      await this.#store.commit(req.groupId, entries, this.#now())
    } catch (err) {
      this.#log('error', 'offset commit not stored', { groupId: req.groupId, err: String(err) })
      for (const topic of response.topics) {
        for (const p of topic.partitions) if (p.errorCode === E.NONE) p.errorCode = E.KAFKA_STORAGE_ERROR
      }
    }
    return response
  }

  offsetFetch(req: OffsetFetchRequest, _apiVersion: number): OffsetFetchResponse {
    if (this.#closed) {
      return { throttleTimeMs: 0, topics: [], errorCode: E.COORDINATOR_NOT_AVAILABLE }
    }
    let topics: OffsetFetchResponseTopic[]
    if (req.topics === null) {
      const committed = this.#store.groupOffsets(req.groupId) ?? new Map<string, never>()
      topics = [...committed].map(([name, partitions]) => ({
        name,
        partitions: [...partitions].map(([partitionIndex, c]) => ({
          partitionIndex,
          committedOffset: c.offset,
          committedLeaderEpoch: c.leaderEpoch,
          metadata: c.metadata,
          errorCode: E.NONE,
        })),
      }))
    } else {
      topics = req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((partitionIndex) => {
          const c = this.#store.get(req.groupId, t.name, partitionIndex)
          return {
            partitionIndex,
            committedOffset: c?.offset ?? -1,
            committedLeaderEpoch: c?.leaderEpoch ?? -1,
            metadata: c?.metadata ?? '',
            errorCode: E.NONE,
          }
        }),
      }))
    }
    return { throttleTimeMs: 0, topics, errorCode: E.NONE }
  }

  // ---- DescribeGroups / ListGroups / DeleteGroups ----

  describeGroups(req: DescribeGroupsRequest, _apiVersion: number): DescribeGroupsResponse {
    const groups = req.groups.map((groupId): DescribedGroup => {
      const group = this.#groups.get(groupId)
      const described: DescribedGroup = {
        errorCode: this.#closed ? E.COORDINATOR_NOT_AVAILABLE : E.NONE,
        groupId,
        groupState: 'Dead',
        protocolType: '',
        protocolData: '',
        members: [],
        authorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
      }
      if (!group || this.#closed) return described
      const stable = group.state === 'Stable'
      described.groupState = group.state
      described.protocolType = group.protocolType ?? ''
      // Like Kafka, metadata and assignments are shown only when they belong to a settled generation.
      described.protocolData = stable ? (group.protocolName ?? '') : ''
      described.members = [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: stable ? memberMetadata(m, group.protocolName) : EMPTY,
        memberAssignment: stable ? m.assignment : EMPTY,
      }))
      return described
    })
    return { throttleTimeMs: 0, groups }
  }

  listGroups(req: ListGroupsRequest, _apiVersion: number): ListGroupsResponse {
    if (this.#closed) return { throttleTimeMs: 0, errorCode: E.COORDINATOR_NOT_AVAILABLE, groups: [] }
    const filter = new Set(req.statesFilter.map((s) => s.toLowerCase()))
    const groups = [...this.#groups.values()]
      .filter((g) => filter.size === 0 || filter.has(g.state.toLowerCase()))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType ?? '', groupState: g.state }))
    return { throttleTimeMs: 0, errorCode: E.NONE, groups }
  }

  deleteGroups(req: DeleteGroupsRequest, _apiVersion: number): DeleteGroupsResponse {
    const results = req.groupsNames.map((groupId) => {
      if (this.#closed) return { groupId, errorCode: E.COORDINATOR_NOT_AVAILABLE }
      const group = this.#groups.get(groupId)
      if (!group) return { groupId, errorCode: E.GROUP_ID_NOT_FOUND }
      if (group.state !== 'Empty') return { groupId, errorCode: E.NON_EMPTY_GROUP }
      this.#clearTimers(group)
      group.state = 'Dead'
      this.#groups.delete(groupId)
      // The tombstone is queued behind every earlier commit; the response does not wait for it.
      this.#store.deleteGroup(groupId).catch((err: unknown) => {
        this.#log('error', 'group offsets delete not stored', { groupId, err: String(err) })
      })
      this.#log('info', 'group deleted', { groupId })
      return { groupId, errorCode: E.NONE }
    })
    return { throttleTimeMs: 0, results }
  }

  // ---- lifecycle ----

  /** Clears every timer, answers parked requests with COORDINATOR_NOT_AVAILABLE and flushes offsets. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const group of this.#groups.values()) {
      this.#clearTimers(group)
      for (const member of group.members.values()) {
        this.#stopSessionTimer(member)
        const join = joinError(E.COORDINATOR_NOT_AVAILABLE, member.memberId)
        for (const resolve of member.joinWaiters.splice(0)) resolve(join)
        for (const resolve of member.syncWaiters.splice(0)) resolve(syncResponse(E.COORDINATOR_NOT_AVAILABLE, EMPTY))
      }
    }
    await this.#store.close()
  }

  #clearTimers(group: Group): void {
    clearTimeout(group.joinTimer)
    clearTimeout(group.syncTimer)
    group.joinTimer = undefined
    group.syncTimer = undefined
    for (const timer of group.pendingMembers.values()) clearTimeout(timer)
    group.pendingMembers.clear()
  }
}

function joinError(errorCode: number, memberId: string): JoinGroupResponse {
  return { throttleTimeMs: 0, errorCode, generationId: -1, protocolName: '', leader: '', memberId, members: [] }
}

function syncResponse(errorCode: number, assignment: Buffer): SyncGroupResponse {
  return { throttleTimeMs: 0, errorCode, assignment }
}
