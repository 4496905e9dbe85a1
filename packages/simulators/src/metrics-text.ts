import { type SimulatorState } from './simulator-state.ts'

// Prometheus text format written by hand: a few counters, and no registry on the request path.
export function renderMetrics(simulator: string, state: SimulatorState): string {
  const c = state.counters
  const label = `simulator="${simulator}"`
  const lines = [
    '# HELP simulator_requests_total API requests received, by response status.',
    '# TYPE simulator_requests_total counter',
    ...Object.entries(c.requestsByStatus).map(
      ([status, n]) => `simulator_requests_total{${label},status="${status}"} ${n}`,
    ),
    '# HELP simulator_items_total Items received, by outcome.',
    '# TYPE simulator_items_total counter',
    `simulator_items_total{${label},outcome="accepted"} ${c.accepted}`,
    `simulator_items_total{${label},outcome="rejected"} ${c.rejected}`,
    `simulator_items_total{${label},outcome="duplicate"} ${c.duplicates}`,
    `simulator_items_total{${label},outcome="skipped"} ${c.skipped}`,
    '# HELP simulator_received_bytes_total Request body bytes received.',
    '# TYPE simulator_received_bytes_total counter',
    `simulator_received_bytes_total{${label}} ${c.bytesReceived}`,
    '# HELP simulator_faults_injected_total Requests answered by an injected fault.',
    '# TYPE simulator_faults_injected_total counter',
    `simulator_faults_injected_total{${label}} ${c.faultsInjected}`,
  ]
  return `${lines.join('\n')}\n`
}
