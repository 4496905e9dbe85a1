import { type Action } from './action.ts'
import { braze } from './braze.ts'
import { heap } from './heap.ts'
import { mparticle } from './mparticle.ts'
import { recurlyEngage } from './recurly-engage.ts'
import { segmentGroup } from './segment-group.ts'
import { segmentIdentify } from './segment-identify.ts'
import { segmentTrack } from './segment-track.ts'
import { withSendOptions } from '../history/send-options.ts'

// Every action's form ends with the per-send options (dry run, changed rows only).
export const actions: readonly Action[] = [
  segmentIdentify,
  segmentTrack,
  segmentGroup,
  braze,
  heap,
  mparticle,
  recurlyEngage,
].map(withSendOptions)

export function findAction(name: string): Action | undefined {
  return actions.find((action) => action.name === name)
}

export type * from './action.ts'
