import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** Metrics of the file runtime, beside the shared destination metrics (docs/metrics.md lists them). */
export function createFileMetrics(registry: Registry) {
  const registers = [registry]
  return {
    rowsStaged: new Counter({
      name: 'lookstream_destination_file_rows_staged_total',
      help: 'Rows written to staged chunks (rows written again after a restart count again)',
      labelNames: ['destination'] as const,
      registers,
    }),
    chunksStaged: new Counter({
      name: 'lookstream_destination_file_chunks_staged_total',
      help: 'Staged chunks written',
      labelNames: ['destination'] as const,
      registers,
    }),
    writeErrors: new Counter({
      name: 'lookstream_destination_file_storage_errors_total',
      help: 'Failed storage operations (each is retried), by operation',
      labelNames: ['destination', 'operation'] as const,
      registers,
    }),
    files: new Counter({
      name: 'lookstream_destination_files_total',
      help: 'Sends closed, by outcome: published (one complete file), failed (no file, reason on the send record), empty',
      labelNames: ['destination', 'outcome'] as const,
      registers,
    }),
    publishSeconds: new Histogram({
      name: 'lookstream_destination_file_publish_seconds',
      help: 'Time to compose and publish one file',
      labelNames: ['destination'] as const,
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    bufferedBytes: new Gauge({
      name: 'lookstream_destination_file_buffered_bytes',
      help: 'Bytes held in memory for rows not yet staged (the chunk buffers)',
      labelNames: ['destination'] as const,
      registers,
    }),
    sendsAdopted: new Counter({
      name: 'lookstream_destination_file_sends_adopted_total',
      help: 'Sends whose state Redis lost, rebuilt from the staging area, by what it held: open, finished or closed',
      labelNames: ['destination', 'state'] as const,
      registers,
    }),
    unfinishedAborted: new Counter({
      name: 'lookstream_destination_file_unfinished_aborted_total',
      help: 'Unfinished uploads of an interrupted publish that were aborted before publishing again',
      labelNames: ['destination'] as const,
      registers,
    }),
  }
}

export type FileMetrics = ReturnType<typeof createFileMetrics>
