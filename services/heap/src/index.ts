export { EnvironmentId, HEAP_API_HOSTS, HEAP_REGION_URLS, HeapConfig, HeapConnectionConfig } from './config.ts'
export {
  MAX_BULK_ITEMS,
  RATE_HEADROOM,
  TARGET,
  buildHeapBody,
  classifyHeapResponse,
  heap,
  heapRowConnection,
  redactReason,
  requestItemsFor,
  toHeapItem,
  type HeapConnection,
  type HeapEndpoint,
  type HeapItem,
  type HeapRowConnection,
  type HeapTarget,
} from './heap.ts'
export { MAX_VALUE_CHARS, toHeapProperties, truncateValue, type HeapProperties, type LongValues } from './properties.ts'
