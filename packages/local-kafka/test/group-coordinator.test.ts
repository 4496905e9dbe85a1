import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { GroupCoordinator } from '../src/group/coordinator.ts'
import { GroupErrorCode as E } from '../src/group/group-error-codes.ts'
import type { JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest, SyncGroupResponse } from '../src/group/types.ts'

// Drives the coordinator with decoded requests, under fake timers so session and rebalance timeouts can be
// crossed deterministically.

const SESSION_MS = 10_000
const REBALANCE_MS = 20_000
const ctx = { clientId: 'test-client', clientHost: '/127.0.0.1' }

function joinRequest(groupId: string, memberId: string, overrides: Partial<JoinGroupRequest> = {}): JoinGroupRequest {
  return {
    groupId,
    sessionTimeoutMs: SESSION_MS,
    rebalanceTimeoutMs: REBALANCE_MS,
    memberId,
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from(`meta-${memberId || 'new'}`) }],
    ...overrides,
  }
}

function commitRequest(
  groupId: string,
  generationId: number,
  memberId: string,
  offsets: Record<string, number>,
): OffsetCommitRequest {
  return {
    groupId,
    generationId,
    memberId,
    groupInstanceId: null,
    retentionTimeMs: -1,
    topics: Object.entries(offsets).map(([key, offset]) => {
      const [name = '', partition = '0'] = key.split(':')
      return {
        name,
        partitions: [
          {
            partitionIndex: Number(partition),
            committedOffset: offset,
            committedLeaderEpoch: -1,
            committedMetadata: null,
          },
        ],
      }
    }),
  }
}

interface Tracked<T> {
  settled: boolean
  value: T | undefined
}

function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked: Tracked<T> = { settled: false, value: undefined }
  void promise.then((value) => {
    tracked.settled = true
    tracked.value = value
  })
  return tracked
}

function valueOf<T>(tracked: Tracked<T>): T {
  expect(tracked.settled).toBe(true)
  return tracked.value as T
}

// Lets resolved promises run their callbacks without moving the fake clock.
async function flush(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0)
}

let coordinator: GroupCoordinator
let logLines: { level: string; msg: string }[]

function makeCoordinator(initialRebalanceDelayMs = 0): GroupCoordinator {
  return new GroupCoordinator({
    initialRebalanceDelayMs,
    log: (level, msg) => logLines.push({ level, msg }),
  })
}

beforeEach(async () => {
  vi.useFakeTimers()
  logLines = []
  coordinator = makeCoordinator()
  await coordinator.load()
})

afterEach(async () => {
  await coordinator.close()
  vi.useRealTimers()
})

/** The KIP-394 handshake: an empty member id gets MEMBER_ID_REQUIRED and an id to join with. */
async function memberId(groupId: string): Promise<string> {
  const response = await coordinator.joinGroup(joinRequest(groupId, ''), 5, ctx)
  expect(response.errorCode).toBe(E.MEMBER_ID_REQUIRED)
  return response.memberId
}

/** Brings `count` members into one generation: all get ids first, so none completes the rebalance alone. */
async function formGroup(groupId: string, count: number) {
  const ids: string[] = []
  for (let i = 0; i < count; i++) ids.push(await memberId(groupId))
  const joins = ids.map((id) => track(coordinator.joinGroup(joinRequest(groupId, id), 5, ctx)))
  await flush()
  const responses = joins.map(valueOf)
  const leader = responses[0]?.leader ?? ''
  const generationId = responses[0]?.generationId ?? -1
  return { ids, responses, leader, generationId }
}

/** Every member syncs; the leader assigns `assignment-<memberId>`. */
async function syncAll(groupId: string, ids: string[], leader: string, generationId: number) {
  const syncs = new Map<string, Tracked<SyncGroupResponse>>()
  for (const id of ids.filter((i) => i !== leader)) {
    syncs.set(
      id,
      track(coordinator.syncGroup({ groupId, generationId, memberId: id, groupInstanceId: null, assignments: [] }, 3)),
    )
  }
  syncs.set(
    leader,
    track(
      coordinator.syncGroup(
        {
          groupId,
          generationId,
          memberId: leader,
          groupInstanceId: null,
          assignments: ids.map((id) => ({ memberId: id, assignment: Buffer.from(`assignment-${id}`) })),
        },
        3,
      ),
    ),
  )
  await flush()
  return syncs
}

function heartbeat(groupId: string, memberId: string, generationId: number): number {
  return coordinator.heartbeat({ groupId, memberId, generationId, groupInstanceId: null }, 3).errorCode
}

function describeState(groupId: string): string {
  return (
    coordinator.describeGroups({ groups: [groupId], includeAuthorizedOperations: false }, 2).groups[0]?.groupState ?? ''
  )
}

function fetchOne(groupId: string, topic: string, partition: number) {
  return coordinator.offsetFetch({ groupId, topics: [{ name: topic, partitionIndexes: [partition] }] }, 5).topics[0]
    ?.partitions[0]
}

describe('JoinGroup', () => {
  it('answers a v4+ join without member id with MEMBER_ID_REQUIRED and a client-prefixed id, then admits that id', async () => {
    const first = await coordinator.joinGroup(joinRequest('g', ''), 4, ctx)
    expect(first.errorCode).toBe(E.MEMBER_ID_REQUIRED)
    expect(first.memberId).toMatch(/^test-client-[0-9a-f-]{36}$/)
    expect(first.generationId).toBe(-1)
    expect(describeState('g')).toBe('Empty')

    const second = await coordinator.joinGroup(joinRequest('g', first.memberId), 4, ctx)
    expect(second).toMatchObject({ errorCode: E.NONE, generationId: 1, protocolName: 'range', leader: first.memberId })
    expect(second.memberId).toBe(first.memberId)
    expect(second.members).toEqual([
      { memberId: first.memberId, groupInstanceId: null, metadata: Buffer.from(`meta-${first.memberId}`) },
    ])
    expect(describeState('g')).toBe('CompletingRebalance')
  })

  it('lets a v0–3 join without member id join at once', async () => {
    const response = await coordinator.joinGroup(joinRequest('g', '', { rebalanceTimeoutMs: -1 }), 0, ctx)
    expect(response.errorCode).toBe(E.NONE)
    expect(response.generationId).toBe(1)
    expect(response.leader).toBe(response.memberId)
  })

  it('forgets a pending member id that is not used within the session timeout', async () => {
    const id = await memberId('g')
    await vi.advanceTimersByTimeAsync(SESSION_MS + 1)
    const late = await coordinator.joinGroup(joinRequest('g', id), 5, ctx)
    expect(late.errorCode).toBe(E.UNKNOWN_MEMBER_ID)
  })

  it('puts 3 members into one generation and gives only the leader the 3 members with their metadata', async () => {
    const { ids, responses, leader } = await formGroup('g', 3)
    expect(new Set(responses.map((r) => r.generationId))).toEqual(new Set([1]))
    expect(responses.every((r) => r.errorCode === E.NONE && r.leader === leader)).toBe(true)
    expect(ids).toContain(leader)
    for (const r of responses) {
      if (r.memberId === leader) {
        expect(r.members.map((m) => m.memberId).sort()).toEqual([...ids].sort())
        for (const m of r.members) expect(m.metadata).toEqual(Buffer.from(`meta-${m.memberId}`))
      } else {
        expect(r.members).toEqual([])
      }
    }
  })

  it('parks a join until every known member has rejoined', async () => {
    const ids = [await memberId('g'), await memberId('g')]
    const a = track(coordinator.joinGroup(joinRequest('g', ids[0] ?? ''), 5, ctx))
    await vi.advanceTimersByTimeAsync(1000)
    expect(a.settled).toBe(false)
    expect(describeState('g')).toBe('PreparingRebalance')
    const b = track(coordinator.joinGroup(joinRequest('g', ids[1] ?? ''), 5, ctx))
    await flush()
    expect(valueOf(a).generationId).toBe(1)
    expect(valueOf(b).generationId).toBe(1)
  })

  it('rejects an unknown member id, a session timeout out of range and an incompatible protocol', async () => {
    expect((await coordinator.joinGroup(joinRequest('nope', 'ghost'), 5, ctx)).errorCode).toBe(E.UNKNOWN_MEMBER_ID)
    expect((await coordinator.joinGroup(joinRequest('g', '', { sessionTimeoutMs: 10 }), 5, ctx)).errorCode).toBe(
      E.INVALID_SESSION_TIMEOUT,
    )
    expect((await coordinator.joinGroup(joinRequest('', ''), 5, ctx)).errorCode).toBe(E.INVALID_GROUP_ID)
    expect((await coordinator.joinGroup(joinRequest('x', '', { protocols: [] }), 5, ctx)).errorCode).toBe(
      E.INCONSISTENT_GROUP_PROTOCOL,
    )
    expect(coordinator.listGroups({ statesFilter: [] }, 2).groups).toEqual([])
    const { ids } = await formGroup('g', 1)
    const otherType = await coordinator.joinGroup(joinRequest('g', '', { protocolType: 'connect' }), 3, ctx)
    expect(otherType.errorCode).toBe(E.INCONSISTENT_GROUP_PROTOCOL)
    const otherProtocol = await coordinator.joinGroup(
      joinRequest('g', '', { protocols: [{ name: 'sticky', metadata: Buffer.alloc(0) }] }),
      3,
      ctx,
    )
    expect(otherProtocol.errorCode).toBe(E.INCONSISTENT_GROUP_PROTOCOL)
    expect((await coordinator.joinGroup(joinRequest('g', 'ghost'), 5, ctx)).errorCode).toBe(E.UNKNOWN_MEMBER_ID)
    expect(ids).toHaveLength(1)
  })

  it('selects the protocol by vote among those every member supports', async () => {
    const ids = [await memberId('g'), await memberId('g'), await memberId('g')]
    const p = (name: string) => ({ name, metadata: Buffer.from(name) })
    const joins = [
      [p('roundrobin'), p('range')],
      [p('range'), p('roundrobin'), p('sticky')],
      [p('roundrobin'), p('range'), p('cooperative')],
    ].map((protocols, i) => track(coordinator.joinGroup(joinRequest('g', ids[i] ?? '', { protocols }), 5, ctx)))
    await flush()
    for (const j of joins) expect(valueOf(j).protocolName).toBe('roundrobin')
    const leaderView = joins.map(valueOf).find((r) => r.members.length > 0)
    expect(leaderView?.members.every((m) => m.metadata.equals(Buffer.from('roundrobin')))).toBe(true)
  })

  it('rebalances when a new member joins a stable group and keeps the old leader', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    await syncAll('g', ids, leader, generationId)
    expect(describeState('g')).toBe('Stable')

    const newcomerId = await memberId('g')
    const newcomer = track(coordinator.joinGroup(joinRequest('g', newcomerId), 5, ctx))
    await flush()
    expect(newcomer.settled).toBe(false)
    expect(describeState('g')).toBe('PreparingRebalance')
    for (const id of ids) expect(heartbeat('g', id, generationId)).toBe(E.REBALANCE_IN_PROGRESS)

    const rejoins = ids.map((id) => track(coordinator.joinGroup(joinRequest('g', id), 5, ctx)))
    await flush()
    const all = [newcomer, ...rejoins].map(valueOf)
    expect(all.every((r) => r.generationId === generationId + 1 && r.leader === leader)).toBe(true)
    expect(all.find((r) => r.memberId === leader)?.members).toHaveLength(3)
  })

  it('answers a follower that rejoins a stable group with unchanged metadata without a rebalance', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    await syncAll('g', ids, leader, generationId)
    const follower = ids.find((id) => id !== leader) ?? ''
    const again = await coordinator.joinGroup(joinRequest('g', follower), 5, ctx)
    expect(again).toMatchObject({ errorCode: E.NONE, generationId, leader, members: [] })
    expect(describeState('g')).toBe('Stable')
  })

  it('drops members that do not rejoin within the rebalance timeout', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    await syncAll('g', ids, leader, generationId)
    const follower = ids.find((id) => id !== leader) ?? ''
    // A changed subscription from the leader starts a rebalance; the follower keeps heartbeating but never rejoins.
    const leaderJoin = track(
      coordinator.joinGroup(
        joinRequest('g', leader, { protocols: [{ name: 'range', metadata: Buffer.from('v2') }] }),
        5,
        ctx,
      ),
    )
    for (let t = 0; t < REBALANCE_MS - 2000; t += 2000) {
      await vi.advanceTimersByTimeAsync(2000)
      expect(heartbeat('g', follower, generationId)).toBe(E.REBALANCE_IN_PROGRESS)
    }
    expect(leaderJoin.settled).toBe(false)
    await vi.advanceTimersByTimeAsync(2001)
    const response = valueOf(leaderJoin)
    expect(response.generationId).toBe(generationId + 1)
    expect(response.members.map((m) => m.memberId)).toEqual([leader])
    expect(heartbeat('g', follower, generationId)).toBe(E.UNKNOWN_MEMBER_ID)
  })

  it('uses the initial rebalance delay for a group leaving Empty, extended while members keep arriving', async () => {
    await coordinator.close()
    coordinator = makeCoordinator(3000)
    const a = track(coordinator.joinGroup(joinRequest('g', '', { rebalanceTimeoutMs: 10_000 }), 3, ctx))
    await vi.advanceTimersByTimeAsync(1000)
    const b = track(coordinator.joinGroup(joinRequest('g', '', { rebalanceTimeoutMs: 10_000 }), 3, ctx))
    await vi.advanceTimersByTimeAsync(2100)
    // The first delay saw a new member arrive, so it waits one more delay.
    expect(a.settled).toBe(false)
    await vi.advanceTimersByTimeAsync(3000)
    expect(valueOf(a).generationId).toBe(1)
    expect(valueOf(b).generationId).toBe(1)
    expect(valueOf(a).leader).toBe(valueOf(a).memberId)
    expect(valueOf(a).members).toHaveLength(2)
  })
})

describe('SyncGroup', () => {
  it('parks followers until the leader syncs, then gives each member its own assignment', async () => {
    const { ids, leader, generationId } = await formGroup('g', 3)
    const followers = ids.filter((id) => id !== leader)
    const parked = followers.map((id) =>
      track(
        coordinator.syncGroup({ groupId: 'g', generationId, memberId: id, groupInstanceId: null, assignments: [] }, 3),
      ),
    )
    await vi.advanceTimersByTimeAsync(1000)
    expect(parked.some((p) => p.settled)).toBe(false)

    const leaderSync = await coordinator.syncGroup(
      {
        groupId: 'g',
        generationId,
        memberId: leader,
        groupInstanceId: null,
        assignments: ids.map((id) => ({ memberId: id, assignment: Buffer.from(`assignment-${id}`) })),
      },
      3,
    )
    await flush()
    expect(leaderSync).toEqual({
      throttleTimeMs: 0,
      errorCode: E.NONE,
      assignment: Buffer.from(`assignment-${leader}`),
    })
    followers.forEach((id, i) => {
      const tracked = parked[i]
      if (!tracked) throw new Error('missing sync')
      expect(valueOf(tracked)).toEqual({
        throttleTimeMs: 0,
        errorCode: E.NONE,
        assignment: Buffer.from(`assignment-${id}`),
      })
    })
    expect(describeState('g')).toBe('Stable')

    // A repeated sync in Stable gets the stored assignment.
    const again = await coordinator.syncGroup(
      { groupId: 'g', generationId, memberId: followers[0] ?? '', groupInstanceId: null, assignments: [] },
      3,
    )
    expect(again.assignment).toEqual(Buffer.from(`assignment-${followers[0]}`))
  })

  it('answers ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and REBALANCE_IN_PROGRESS', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    const sync = (memberId: string, gen: number) =>
      coordinator.syncGroup({ groupId: 'g', generationId: gen, memberId, groupInstanceId: null, assignments: [] }, 3)
    expect((await sync(leader, generationId + 1)).errorCode).toBe(E.ILLEGAL_GENERATION)
    expect((await sync('ghost', generationId)).errorCode).toBe(E.UNKNOWN_MEMBER_ID)
    expect(
      (
        await coordinator.syncGroup(
          { groupId: 'nope', generationId, memberId: leader, groupInstanceId: null, assignments: [] },
          3,
        )
      ).errorCode,
    ).toBe(E.UNKNOWN_MEMBER_ID)

    await syncAll('g', ids, leader, generationId)
    const rejoin = track(coordinator.joinGroup(joinRequest('g', leader), 5, ctx))
    expect(describeState('g')).toBe('PreparingRebalance')
    expect((await sync(ids.find((id) => id !== leader) ?? '', generationId)).errorCode).toBe(E.REBALANCE_IN_PROGRESS)
    expect(rejoin.settled).toBe(false)
  })

  it('releases parked followers with REBALANCE_IN_PROGRESS when the group rebalances before the leader syncs', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    const follower = ids.find((id) => id !== leader) ?? ''
    const parked = track(
      coordinator.syncGroup(
        { groupId: 'g', generationId, memberId: follower, groupInstanceId: null, assignments: [] },
        3,
      ),
    )
    // A v3 newcomer joins directly, which restarts the rebalance.
    const newcomer = track(coordinator.joinGroup(joinRequest('g', ''), 3, ctx))
    await flush()
    expect(newcomer.settled).toBe(false)
    expect(describeState('g')).toBe('PreparingRebalance')
    expect(valueOf(parked).errorCode).toBe(E.REBALANCE_IN_PROGRESS)
  })

  it('removes members that never sync within the rebalance timeout and rebalances the rest', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    const follower = ids.find((id) => id !== leader) ?? ''
    // Only the follower syncs; the leader keeps heartbeating but never sends its assignment.
    const parked = track(
      coordinator.syncGroup(
        { groupId: 'g', generationId, memberId: follower, groupInstanceId: null, assignments: [] },
        3,
      ),
    )
    for (let t = 0; t < REBALANCE_MS - 2000; t += 2000) {
      await vi.advanceTimersByTimeAsync(2000)
      expect(heartbeat('g', leader, generationId)).toBe(E.NONE)
    }
    expect(parked.settled).toBe(false)
    await vi.advanceTimersByTimeAsync(2001)
    expect(valueOf(parked).errorCode).toBe(E.REBALANCE_IN_PROGRESS)
    expect(heartbeat('g', leader, generationId)).toBe(E.UNKNOWN_MEMBER_ID)
    const rejoined = await coordinator.joinGroup(joinRequest('g', follower), 5, ctx)
    expect(rejoined).toMatchObject({ errorCode: E.NONE, generationId: generationId + 1, leader: follower })
    expect(rejoined.members.map((m) => m.memberId)).toEqual([follower])
  })
})

describe('Heartbeat, LeaveGroup and session expiry', () => {
  it('accepts heartbeats of the current generation and rejects others', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    await syncAll('g', ids, leader, generationId)
    expect(heartbeat('g', leader, generationId)).toBe(E.NONE)
    expect(heartbeat('g', leader, generationId - 1)).toBe(E.ILLEGAL_GENERATION)
    expect(heartbeat('g', 'ghost', generationId)).toBe(E.UNKNOWN_MEMBER_ID)
    expect(heartbeat('nope', leader, generationId)).toBe(E.UNKNOWN_MEMBER_ID)
  })

  it('rebalances after a clean leave (v3 batch) and gives the remaining members a new generation', async () => {
    const { ids, leader, generationId } = await formGroup('g', 3)
    await syncAll('g', ids, leader, generationId)
    const leaving = ids.find((id) => id !== leader) ?? ''
    const left = coordinator.leaveGroup(
      {
        groupId: 'g',
        memberId: '',
        members: [
          { memberId: leaving, groupInstanceId: null },
          { memberId: 'ghost', groupInstanceId: null },
        ],
      },
      3,
    )
    expect(left).toEqual({
      throttleTimeMs: 0,
      errorCode: E.NONE,
      members: [
        { memberId: leaving, groupInstanceId: null, errorCode: E.NONE },
        { memberId: 'ghost', groupInstanceId: null, errorCode: E.UNKNOWN_MEMBER_ID },
      ],
    })
    const remaining = ids.filter((id) => id !== leaving)
    for (const id of remaining) expect(heartbeat('g', id, generationId)).toBe(E.REBALANCE_IN_PROGRESS)
    const rejoins = remaining.map((id) => track(coordinator.joinGroup(joinRequest('g', id), 5, ctx)))
    await flush()
    const responses = rejoins.map(valueOf)
    expect(responses.every((r) => r.generationId === generationId + 1)).toBe(true)
    expect(
      responses
        .find((r) => r.memberId === leader)
        ?.members.map((m) => m.memberId)
        .sort(),
    ).toEqual(remaining.sort())
    const syncs = await syncAll('g', remaining, leader, generationId + 1)
    for (const [id, s] of syncs) expect(valueOf(s).assignment).toEqual(Buffer.from(`assignment-${id}`))
  })

  it('handles a v0–2 leave of a single member, and the group empties when the last one leaves', async () => {
    const { ids, leader, generationId } = await formGroup('g', 1)
    await syncAll('g', ids, leader, generationId)
    expect(coordinator.leaveGroup({ groupId: 'g', memberId: 'ghost', members: [] }, 1)).toEqual({
      throttleTimeMs: 0,
      errorCode: E.UNKNOWN_MEMBER_ID,
      members: [],
    })
    expect(coordinator.leaveGroup({ groupId: 'g', memberId: leader, members: [] }, 1).errorCode).toBe(E.NONE)
    await flush()
    expect(describeState('g')).toBe('Empty')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('removes a crashed member when its session expires while the others heartbeat, then rebalances', async () => {
    const { ids, leader, generationId } = await formGroup('g', 3)
    await syncAll('g', ids, leader, generationId)
    const crashed = ids.find((id) => id !== leader) ?? ''
    const alive = ids.filter((id) => id !== crashed)
    const errors: number[] = []
    for (let t = 0; t <= SESSION_MS; t += 1000) {
      await vi.advanceTimersByTimeAsync(1000)
      for (const id of alive) errors.push(heartbeat('g', id, generationId))
    }
    expect(errors).toContain(E.REBALANCE_IN_PROGRESS)
    expect(errors.slice(0, 2 * 8).every((e) => e === E.NONE)).toBe(true)
    expect(heartbeat('g', crashed, generationId)).toBe(E.UNKNOWN_MEMBER_ID)
    const rejoins = alive.map((id) => track(coordinator.joinGroup(joinRequest('g', id), 5, ctx)))
    await flush()
    const leaderView = rejoins.map(valueOf).find((r) => r.memberId === leader)
    expect(leaderView?.generationId).toBe(generationId + 1)
    expect(leaderView?.members.map((m) => m.memberId).sort()).toEqual(alive.sort())
  })

  it('keeps a member whose join is parked alive without heartbeats', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    await syncAll('g', ids, leader, generationId)
    const follower = ids.find((id) => id !== leader) ?? ''
    // The leader rejoins and then sends nothing while the follower takes longer than a session to rejoin.
    const parked = track(coordinator.joinGroup(joinRequest('g', leader), 5, ctx))
    for (let t = 0; t < SESSION_MS + 5000; t += 2000) {
      await vi.advanceTimersByTimeAsync(2000)
      expect(heartbeat('g', follower, generationId)).toBe(E.REBALANCE_IN_PROGRESS)
    }
    expect(parked.settled).toBe(false)
    const rejoin = track(coordinator.joinGroup(joinRequest('g', follower), 5, ctx))
    await flush()
    expect(
      valueOf(parked)
        .members.map((m) => m.memberId)
        .sort(),
    ).toEqual([...ids].sort())
    expect(valueOf(rejoin).generationId).toBe(generationId + 1)
  })

  it('counts an offset commit as a heartbeat', async () => {
    const { ids, leader, generationId } = await formGroup('g', 1)
    await syncAll('g', ids, leader, generationId)
    for (let t = 0; t < 3 * SESSION_MS; t += SESSION_MS / 2) {
      await vi.advanceTimersByTimeAsync(SESSION_MS / 2)
      const res = await coordinator.offsetCommit(commitRequest('g', generationId, leader, { 't:0': t }), 5)
      expect(res.topics[0]?.partitions[0]?.errorCode).toBe(E.NONE)
    }
    expect(heartbeat('g', leader, generationId)).toBe(E.NONE)
  })
})

describe('static membership (group.instance.id)', () => {
  const staticJoin = (groupId: string, memberId: string, instance: string, overrides: Partial<JoinGroupRequest> = {}) =>
    coordinator.joinGroup(joinRequest(groupId, memberId, { groupInstanceId: instance, ...overrides }), 5, ctx)

  async function stableStaticGroup() {
    const ids = ['instance-a', 'instance-b'].map((instance) => track(staticJoin('g', '', instance)))
    await flush()
    // Two separate joins: the first completes alone (generation 1), the second starts generation 2.
    const first = valueOf(ids[0] as Tracked<JoinGroupResponse>)
    const second = ids[1] as Tracked<JoinGroupResponse>
    expect(second.settled).toBe(false)
    const rejoin = track(staticJoin('g', first.memberId, 'instance-a'))
    await flush()
    const a = valueOf(rejoin)
    const b = valueOf(second)
    expect(a.generationId).toBe(2)
    await syncAll('g', [a.memberId, b.memberId], a.leader, a.generationId)
    expect(describeState('g')).toBe('Stable')
    return { a, b }
  }

  it('gives a static member an id at once (no MEMBER_ID_REQUIRED), prefixed by its instance id', async () => {
    const response = await staticJoin('g', '', 'instance-a')
    expect(response.errorCode).toBe(E.NONE)
    expect(response.memberId).toMatch(/^instance-a-[0-9a-f-]{36}$/)
    expect(response.generationId).toBe(1)
  })

  it('lets a restarted static member take over its assignment without a rebalance and fences the old id', async () => {
    const { a, b } = await stableStaticGroup()
    const restarted = await staticJoin('g', '', 'instance-b')
    expect(restarted).toMatchObject({
      errorCode: E.NONE,
      generationId: b.generationId,
      leader: a.memberId,
      members: [],
    })
    expect(restarted.memberId).not.toBe(b.memberId)
    expect(describeState('g')).toBe('Stable')
    const sync = await coordinator.syncGroup(
      {
        groupId: 'g',
        generationId: restarted.generationId,
        memberId: restarted.memberId,
        groupInstanceId: 'instance-b',
        assignments: [],
      },
      3,
    )
    expect(sync.assignment).toEqual(Buffer.from(`assignment-${b.memberId}`))
    const old = { groupId: 'g', generationId: b.generationId, memberId: b.memberId, groupInstanceId: 'instance-b' }
    expect(coordinator.heartbeat(old, 3).errorCode).toBe(E.FENCED_INSTANCE_ID)
    expect(
      (
        await coordinator.offsetCommit(
          { ...commitRequest('g', b.generationId, b.memberId, { 't:0': 1 }), groupInstanceId: 'instance-b' },
          7,
        )
      ).topics[0]?.partitions[0]?.errorCode,
    ).toBe(E.FENCED_INSTANCE_ID)
    expect((await staticJoin('g', b.memberId, 'instance-b')).errorCode).toBe(E.FENCED_INSTANCE_ID)
    expect(coordinator.heartbeat({ ...old, memberId: restarted.memberId }, 3).errorCode).toBe(E.NONE)
  })

  it('rebalances when a static member is replaced while the group completes a rebalance, fencing its parked sync', async () => {
    const { a, b } = await stableStaticGroup()
    const rejoins = [a, b].map((m, i) => track(staticJoin('g', m.memberId, i === 0 ? 'instance-a' : 'instance-b')))
    await flush()
    const generationId = valueOf(rejoins[0] as Tracked<JoinGroupResponse>).generationId
    const parked = track(
      coordinator.syncGroup(
        { groupId: 'g', generationId, memberId: b.memberId, groupInstanceId: 'instance-b', assignments: [] },
        3,
      ),
    )
    const replacement = track(staticJoin('g', '', 'instance-b'))
    await flush()
    expect(valueOf(parked).errorCode).toBe(E.FENCED_INSTANCE_ID)
    expect(describeState('g')).toBe('PreparingRebalance')
    const leaderRejoin = track(staticJoin('g', a.memberId, 'instance-a'))
    await flush()
    expect(valueOf(replacement).generationId).toBe(generationId + 1)
    expect(
      valueOf(leaderRejoin)
        .members.map((m) => m.memberId)
        .sort(),
    ).toEqual([a.memberId, valueOf(replacement).memberId].sort())
  })

  it('lets a static member leave by its instance id alone', async () => {
    const { a, b } = await stableStaticGroup()
    const left = coordinator.leaveGroup(
      {
        groupId: 'g',
        memberId: '',
        members: [
          { memberId: '', groupInstanceId: 'instance-b' },
          { memberId: 'x', groupInstanceId: 'instance-a' },
        ],
      },
      3,
    )
    expect(left.members.map((m) => m.errorCode)).toEqual([E.NONE, E.FENCED_INSTANCE_ID])
    expect(heartbeat('g', a.memberId, a.generationId)).toBe(E.REBALANCE_IN_PROGRESS)
    expect(heartbeat('g', b.memberId, b.generationId)).toBe(E.UNKNOWN_MEMBER_ID)
  })
})

describe('OffsetCommit and OffsetFetch', () => {
  it('accepts simple commits (generation -1) for a group without members and returns them', async () => {
    const res = await coordinator.offsetCommit(commitRequest('simple', -1, '', { 't:0': 42, 't:1': 7 }), 2)
    expect(res.topics[0]?.partitions[0]?.errorCode).toBe(E.NONE)
    expect(fetchOne('simple', 't', 0)).toEqual({
      partitionIndex: 0,
      committedOffset: 42,
      committedLeaderEpoch: -1,
      metadata: '',
      errorCode: E.NONE,
    })
    expect(coordinator.listGroups({ statesFilter: [] }, 2).groups).toEqual([
      { groupId: 'simple', protocolType: '', groupState: 'Empty' },
    ])
  })

  it('returns -1 and empty metadata for an unknown group or partition, and everything for topics null', async () => {
    expect(fetchOne('nope', 't', 0)).toMatchObject({ committedOffset: -1, metadata: '', errorCode: E.NONE })
    await coordinator.offsetCommit(
      {
        ...commitRequest('g', -1, '', {}),
        topics: [
          {
            name: 'a',
            partitions: [
              { partitionIndex: 0, committedOffset: 5, committedLeaderEpoch: 3, committedMetadata: 'm' },
              { partitionIndex: 2, committedOffset: 9, committedLeaderEpoch: -1, committedMetadata: null },
            ],
          },
          {
            name: 'b',
            partitions: [{ partitionIndex: 1, committedOffset: 1, committedLeaderEpoch: -1, committedMetadata: '' }],
          },
        ],
      },
      7,
    )
    expect(fetchOne('g', 'a', 1)).toMatchObject({ committedOffset: -1, committedLeaderEpoch: -1, metadata: '' })
    const all = coordinator.offsetFetch({ groupId: 'g', topics: null }, 5)
    expect(all.errorCode).toBe(E.NONE)
    expect(all.topics).toEqual([
      {
        name: 'a',
        partitions: [
          { partitionIndex: 0, committedOffset: 5, committedLeaderEpoch: 3, metadata: 'm', errorCode: 0 },
          { partitionIndex: 2, committedOffset: 9, committedLeaderEpoch: -1, metadata: '', errorCode: 0 },
        ],
      },
      {
        name: 'b',
        partitions: [{ partitionIndex: 1, committedOffset: 1, committedLeaderEpoch: -1, metadata: '', errorCode: 0 }],
      },
    ])
  })

  it('checks member and generation when the group has members, and refuses commits while completing a rebalance', async () => {
    expect(
      (await coordinator.offsetCommit(commitRequest('fresh', 3, 'x', { 't:0': 1 }), 5)).topics[0]?.partitions[0]
        ?.errorCode,
    ).toBe(E.ILLEGAL_GENERATION)
    const { ids, leader, generationId } = await formGroup('g', 2)
    const code = async (gen: number, member: string) =>
      (await coordinator.offsetCommit(commitRequest('g', gen, member, { 't:0': 10 }), 5)).topics[0]?.partitions[0]
        ?.errorCode
    expect(await code(generationId, leader)).toBe(E.REBALANCE_IN_PROGRESS)
    await syncAll('g', ids, leader, generationId)
    expect(await code(generationId, 'ghost')).toBe(E.UNKNOWN_MEMBER_ID)
    expect(await code(-1, '')).toBe(E.UNKNOWN_MEMBER_ID)
    expect(await code(generationId + 1, leader)).toBe(E.ILLEGAL_GENERATION)
    expect(fetchOne('g', 't', 0)?.committedOffset).toBe(-1)
    expect(await code(generationId, leader)).toBe(E.NONE)
    expect(fetchOne('g', 't', 0)?.committedOffset).toBe(10)
    // PreparingRebalance still accepts commits of the current generation (members commit before rejoining).
    track(coordinator.joinGroup(joinRequest('g', leader), 5, ctx))
    expect(describeState('g')).toBe('PreparingRebalance')
    expect(await code(generationId, ids.find((id) => id !== leader) ?? '')).toBe(E.NONE)
  })

  it('rejects metadata above 4096 characters per partition', async () => {
    const res = await coordinator.offsetCommit(
      {
        ...commitRequest('g', -1, '', {}),
        topics: [
          {
            name: 't',
            partitions: [
              { partitionIndex: 0, committedOffset: 1, committedLeaderEpoch: -1, committedMetadata: 'x'.repeat(4097) },
              { partitionIndex: 1, committedOffset: 2, committedLeaderEpoch: -1, committedMetadata: 'ok' },
            ],
          },
        ],
      },
      5,
    )
    expect(res.topics[0]?.partitions.map((p) => p.errorCode)).toEqual([E.OFFSET_METADATA_TOO_LARGE, E.NONE])
    expect(fetchOne('g', 't', 0)?.committedOffset).toBe(-1)
    expect(fetchOne('g', 't', 1)?.metadata).toBe('ok')
  })
})

describe('DescribeGroups, ListGroups and DeleteGroups', () => {
  it('describes a stable group with member metadata and assignments, and an unknown group as Dead', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    const mid = coordinator.describeGroups({ groups: ['g'], includeAuthorizedOperations: false }, 2).groups[0]
    expect(mid?.groupState).toBe('CompletingRebalance')
    expect(mid?.members.every((m) => m.memberAssignment.length === 0)).toBe(true)
    await syncAll('g', ids, leader, generationId)
    const [stable, unknown] = coordinator.describeGroups(
      { groups: ['g', 'nope'], includeAuthorizedOperations: false },
      2,
    ).groups
    expect(stable).toMatchObject({
      errorCode: 0,
      groupId: 'g',
      groupState: 'Stable',
      protocolType: 'consumer',
      protocolData: 'range',
    })
    expect(stable?.members.map((m) => m.memberId).sort()).toEqual([...ids].sort())
    for (const m of stable?.members ?? []) {
      expect(m).toMatchObject({ clientId: 'test-client', clientHost: '/127.0.0.1', groupInstanceId: null })
      expect(m.memberMetadata).toEqual(Buffer.from(`meta-${m.memberId}`))
      expect(m.memberAssignment).toEqual(Buffer.from(`assignment-${m.memberId}`))
    }
    expect(unknown).toMatchObject({ errorCode: 0, groupId: 'nope', groupState: 'Dead', members: [] })
  })

  it('lists groups with their protocol type and state, filtered by state', async () => {
    const { ids, leader, generationId } = await formGroup('g', 1)
    await syncAll('g', ids, leader, generationId)
    await coordinator.offsetCommit(commitRequest('simple', -1, '', { 't:0': 1 }), 5)
    expect(coordinator.listGroups({ statesFilter: [] }, 2)).toEqual({
      throttleTimeMs: 0,
      errorCode: 0,
      groups: [
        { groupId: 'g', protocolType: 'consumer', groupState: 'Stable' },
        { groupId: 'simple', protocolType: '', groupState: 'Empty' },
      ],
    })
    expect(coordinator.listGroups({ statesFilter: ['stable'] }, 4).groups.map((g) => g.groupId)).toEqual(['g'])
  })

  it('deletes only empty groups, with their offsets', async () => {
    const { ids, leader, generationId } = await formGroup('busy', 1)
    await syncAll('busy', ids, leader, generationId)
    await coordinator.offsetCommit(commitRequest('idle', -1, '', { 't:0': 5 }), 5)
    expect(coordinator.deleteGroups({ groupsNames: ['busy', 'idle', 'nope'] }, 1).results).toEqual([
      { groupId: 'busy', errorCode: E.NON_EMPTY_GROUP },
      { groupId: 'idle', errorCode: E.NONE },
      { groupId: 'nope', errorCode: E.GROUP_ID_NOT_FOUND },
    ])
    expect(fetchOne('idle', 't', 0)).toMatchObject({ committedOffset: -1 })
    expect(describeState('idle')).toBe('Dead')
  })
})

describe('close', () => {
  it('answers parked joins and syncs with COORDINATOR_NOT_AVAILABLE and clears every timer', async () => {
    const { ids, leader, generationId } = await formGroup('g', 2)
    const follower = ids.find((id) => id !== leader) ?? ''
    const parkedSync = track(
      coordinator.syncGroup(
        { groupId: 'g', generationId, memberId: follower, groupInstanceId: null, assignments: [] },
        3,
      ),
    )
    const otherIds = [await memberId('other'), await memberId('other')]
    const parkedJoin = track(coordinator.joinGroup(joinRequest('other', otherIds[0] ?? ''), 5, ctx))
    await flush()
    expect(parkedJoin.settled).toBe(false)
    expect(vi.getTimerCount()).toBeGreaterThan(0)
    await coordinator.close()
    await flush()
    expect(valueOf(parkedSync).errorCode).toBe(E.COORDINATOR_NOT_AVAILABLE)
    expect(valueOf(parkedJoin).errorCode).toBe(E.COORDINATOR_NOT_AVAILABLE)
    expect(vi.getTimerCount()).toBe(0)
    expect((await coordinator.joinGroup(joinRequest('g', ''), 5, ctx)).errorCode).toBe(E.COORDINATOR_NOT_AVAILABLE)
  })
})
