import { readFileSync } from 'node:fs'

// Figures the kernel keeps per process (Linux /proc).

/** Peak resident set size (VmHWM) in bytes. */
export function peakRssBytes(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

/** CPU seconds (user + system) the process has used so far; clock ticks are 100/s on Linux. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
}

/** Current resident set size (VmRSS) in bytes. */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

/**
 * The whole machine's CPU seconds so far (/proc/stat, every core): idle (with I/O wait), stolen (the hypervisor ran
 * something else on this VM's cores) and in all.
 */
export function machineCpuSeconds(): { idle: number; steal: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = fields.reduce((sum, ticks) => sum + ticks, 0)
  return { idle: (fields[3]! + fields[4]!) / 100, steal: fields[7]! / 100, total: total / 100 }
}
