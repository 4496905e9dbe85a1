import { type ApiDef } from '../schema.ts'
import { AlterConfigs } from './alter-configs.ts'
import { ApiVersions } from './api-versions.ts'
import { CreateTopics } from './create-topics.ts'
import { DeleteGroups } from './delete-groups.ts'
import { DeleteTopics } from './delete-topics.ts'
import { DescribeConfigs } from './describe-configs.ts'
import { DescribeGroups } from './describe-groups.ts'
import { Fetch } from './fetch.ts'
import { FindCoordinator } from './find-coordinator.ts'
import { Heartbeat } from './heartbeat.ts'
import { InitProducerId } from './init-producer-id.ts'
import { JoinGroup } from './join-group.ts'
import { LeaveGroup } from './leave-group.ts'
import { ListGroups } from './list-groups.ts'
import { ListOffsets } from './list-offsets.ts'
import { Metadata } from './metadata.ts'
import { OffsetCommit } from './offset-commit.ts'
import { OffsetFetch } from './offset-fetch.ts'
import { Produce } from './produce.ts'
import { SaslAuthenticate, SaslHandshake } from './sasl.ts'
import { SyncGroup } from './sync-group.ts'

export const API_DEFS: readonly ApiDef[] = [
  Produce,
  Fetch,
  ListOffsets,
  Metadata,
  OffsetCommit,
  OffsetFetch,
  FindCoordinator,
  JoinGroup,
  Heartbeat,
  LeaveGroup,
  SyncGroup,
  DescribeGroups,
  ListGroups,
  ApiVersions,
  CreateTopics,
  DeleteTopics,
  InitProducerId,
  DescribeConfigs,
  AlterConfigs,
  DeleteGroups,
  SaslHandshake,
  SaslAuthenticate,
]

export const API_BY_KEY: ReadonlyMap<number, ApiDef> = new Map(API_DEFS.map((d) => [d.key, d]))
