export { SEGMENT_API_HOSTS, SegmentConfig, SegmentConnectionConfig } from './config.ts'
export { segment, toSegmentItem, type SegmentConnection, type SegmentItem } from './segment.ts'
