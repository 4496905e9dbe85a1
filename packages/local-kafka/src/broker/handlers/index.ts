import { type Handler } from '../context.ts'
import { type GroupApi } from '../group-api.ts'
import { handleAlterConfigs } from './alter-configs.ts'
import { handleApiVersions } from './api-versions.ts'
import { handleCreateTopics } from './create-topics.ts'
import { handleDeleteTopics } from './delete-topics.ts'
import { handleDescribeConfigs } from './describe-configs.ts'
import { handleFetch } from './fetch.ts'
import { handleFindCoordinator } from './find-coordinator.ts'
import { groupHandler } from './groups.ts'
import { handleInitProducerId } from './init-producer-id.ts'
import { handleListOffsets } from './list-offsets.ts'
import { handleMetadata } from './metadata.ts'
import { handleProduce } from './produce.ts'

export function handlerTable(groups: GroupApi | null): Map<number, Handler> {
  return new Map<number, Handler>([
    [0, handleProduce],
    [1, handleFetch],
    [2, handleListOffsets],
    [3, handleMetadata],
    [8, groupHandler(groups, 'offsetCommit')],
    [9, groupHandler(groups, 'offsetFetch')],
    [10, handleFindCoordinator],
    [11, groupHandler(groups, 'joinGroup')],
    [12, groupHandler(groups, 'heartbeat')],
    [13, groupHandler(groups, 'leaveGroup')],
    [14, groupHandler(groups, 'syncGroup')],
    [15, groupHandler(groups, 'describeGroups')],
    [16, groupHandler(groups, 'listGroups')],
    [18, handleApiVersions],
    [19, handleCreateTopics],
    [20, handleDeleteTopics],
    [22, handleInitProducerId],
    [32, handleDescribeConfigs],
    [33, handleAlterConfigs],
    [42, groupHandler(groups, 'deleteGroups')],
  ])
}
