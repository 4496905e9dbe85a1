import type {
  GroupStateName,
  JoinGroupRequestProtocol,
  JoinGroupResponse,
  JoinGroupResponseMember,
  SyncGroupResponse,
} from './types.ts'

// The state of one classic consumer group. GroupCoordinator owns every instance and is the only code that
// changes one; these are plain records plus the pure rules that read them.

export interface Member {
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly clientId: string
  readonly clientHost: string
  sessionTimeoutMs: number
  rebalanceTimeoutMs: number
  protocolType: string
  protocols: JoinGroupRequestProtocol[]
  assignment: Buffer
  // Parked JoinGroup and SyncGroup requests (a client may resend before the first one is answered: all of them
  // get the same answer). While any is parked the member is kept alive without heartbeats, as in Kafka.
  joinWaiters: ((response: JoinGroupResponse) => void)[]
  syncWaiters: ((response: SyncGroupResponse) => void)[]
  sessionTimer: NodeJS.Timeout | undefined
}

export interface Group {
  readonly groupId: string
  state: GroupStateName
  generationId: number
  protocolType: string | null
  protocolName: string | null
  leaderId: string | null
  readonly members: Map<string, Member>
  // Static membership (KIP-345): group.instance.id → the member id it currently holds.
  readonly staticMembers: Map<string, string>
  // Dynamic members that were given an id with MEMBER_ID_REQUIRED and have not joined with it yet.
  readonly pendingMembers: Map<string, NodeJS.Timeout>
  // Members of the current generation that have not sent SyncGroup yet.
  readonly pendingSync: Set<string>
  joinTimer: NodeJS.Timeout | undefined
  syncTimer: NodeJS.Timeout | undefined
  // Group.initial.rebalance.delay: true while the first rebalance after Empty waits for more members.
  initialDelayActive: boolean
  newMemberAdded: boolean
}

export function newGroup(groupId: string): Group {
  return {
    groupId,
    state: 'Empty',
    generationId: 0,
    protocolType: null,
    protocolName: null,
    leaderId: null,
    members: new Map(),
    staticMembers: new Map(),
    pendingMembers: new Map(),
    pendingSync: new Set(),
    joinTimer: undefined,
    syncTimer: undefined,
    initialDelayActive: false,
    newMemberAdded: false,
  }
}

/** A request that names a static instance with a member id other than the one the instance now holds. */
export function isFencedInstance(group: Group, groupInstanceId: string | null, memberId: string): boolean {
  if (groupInstanceId === null) return false
  const current = group.staticMembers.get(groupInstanceId)
  return current !== undefined && current !== memberId
}

export function isAwaitingJoin(member: Member): boolean {
  return member.joinWaiters.length > 0
}

export function allMembersJoined(group: Group): boolean {
  if (group.pendingMembers.size > 0) return false
  for (const member of group.members.values()) if (!isAwaitingJoin(member)) return false
  return true
}

export function maxRebalanceTimeoutMs(group: Group): number {
  let max = 0
  for (const member of group.members.values()) max = Math.max(max, member.rebalanceTimeoutMs)
  return max
}

/** Protocol names every current member supports, in no particular order. */
function commonProtocols(group: Group, ignoreMemberId?: string): Set<string> | undefined {
  let common: Set<string> | undefined
  for (const member of group.members.values()) {
    if (member.memberId === ignoreMemberId) continue
    const names = new Set(member.protocols.map((p) => p.name))
    common = common === undefined ? names : new Set([...common].filter((n) => names.has(n)))
  }
  return common
}

/**
 * Whether a member with these protocols may join: the group's protocol type, and at least one protocol that
 * every other member supports too. An empty group accepts anything non-empty.
 */
export function supportsProtocols(
  group: Group,
  protocolType: string,
  protocols: JoinGroupRequestProtocol[],
  memberId: string,
): boolean {
  if (protocolType === '' || protocols.length === 0) return false
  const common = commonProtocols(group, memberId)
  if (common === undefined) return true
  if (group.protocolType !== null && group.protocolType !== protocolType) return false
  return protocols.some((p) => common.has(p.name))
}

/** Kafka's vote: among protocols all members support, each member votes for its first; most votes wins. */
export function selectProtocol(group: Group): string {
  const candidates = commonProtocols(group) ?? new Set<string>()
  const votes = new Map<string, number>()
  for (const member of group.members.values()) {
    const choice = member.protocols.find((p) => candidates.has(p.name))
    if (choice) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1)
  }
  let best = ''
  let bestVotes = 0
  for (const [name, count] of votes) {
    if (count > bestVotes) {
      best = name
      bestVotes = count
    }
  }
  return best
}

export function sameProtocols(member: Member, protocols: JoinGroupRequestProtocol[]): boolean {
  if (member.protocols.length !== protocols.length) return false
  return member.protocols.every((p, i) => p.name === protocols[i]?.name && p.metadata.equals(protocols[i].metadata))
}

export function memberMetadata(member: Member, protocolName: string | null): Buffer {
  return member.protocols.find((p) => p.name === protocolName)?.metadata ?? Buffer.alloc(0)
}

/** The members list only the leader receives in its JoinGroup response. */
export function leaderMembersList(group: Group): JoinGroupResponseMember[] {
  return [...group.members.values()].map((m) => ({
    memberId: m.memberId,
    groupInstanceId: m.groupInstanceId,
    metadata: memberMetadata(m, group.protocolName),
  }))
}
