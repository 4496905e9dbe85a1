// Whether a process's RSS stayed flat over a run, from its samples.
//
// The run (from the first sample to the last) is cut into four quartiles by time. "Flat": the last quartile's
// maximum is within FLAT_TOLERANCE of the second quartile's maximum (the first quartile is the warm-up: heaps,
// buffers and caches grow to their working size there).

export const FLAT_TOLERANCE = 0.1

export interface Sample {
  /** Seconds since the run started. */
  t: number
  rssBytes: number
}

export interface Flatness {
  peakBytes: number
  /** RSS at 10, 25, 50, 75 and 100 % of the run (the last sample at or before that time). */
  at: [number, number, number, number, number]
  /** Each quartile's maximum. */
  quartileMax: [number, number, number, number]
  /** Last quartile's maximum over the second quartile's, minus one (0.05 = 5 % higher). */
  growth: number
  flat: boolean
}

export function flatness(samples: readonly Sample[], tolerance = FLAT_TOLERANCE): Flatness {
  if (samples.length === 0) throw new Error('no samples')
  const start = samples[0]!.t
  const span = samples[samples.length - 1]!.t - start
  const at = (fraction: number): number => {
    const until = start + span * fraction
    let value = samples[0]!.rssBytes
    for (const s of samples) {
      if (s.t > until) break
      value = s.rssBytes
    }
    return value
  }
  const quartileMax: [number, number, number, number] = [0, 0, 0, 0]
  for (const s of samples) {
    const q = span === 0 ? 3 : Math.min(3, Math.floor(((s.t - start) / span) * 4))
    quartileMax[q] = Math.max(quartileMax[q]!, s.rssBytes)
  }
  // A quartile without a sample (fewer than four samples) takes the one before it.
  for (let q = 1; q < 4; q++) if (quartileMax[q] === 0) quartileMax[q] = quartileMax[q - 1]!
  const growth = quartileMax[1] === 0 ? 0 : quartileMax[3] / quartileMax[1] - 1
  return {
    peakBytes: Math.max(...samples.map((s) => s.rssBytes)),
    at: [at(0.1), at(0.25), at(0.5), at(0.75), at(1)],
    quartileMax,
    growth,
    flat: growth <= tolerance,
  }
}

/** The pipeline's own services; the other components (Kafka, Redis, simulators, S3) hold the run's data. */
export const SERVICES = ['ingress', 'segment', 'braze', 'heap', 'mparticle', 'recurly-engage']

export function markdownTable(rows: Record<string, number | string>[]): string {
  const keys = Object.keys(rows[0] ?? {})
  return [
    `| ${keys.join(' | ')} |`,
    `|${keys.map(() => '---').join('|')}|`,
    ...rows.map(
      (r) =>
        `| ${keys.map((k) => (typeof r[k] === 'number' ? r[k].toLocaleString('en') : (r[k] ?? ''))).join(' | ')} |`,
    ),
  ].join('\n')
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1)

/** One line per component: peak, RSS over the run, quartile maxima, the verdict and CPU seconds. */
export function memoryTable(rows: { component: string; f: Flatness; cpuSeconds: number }[]): string {
  return markdownTable(
    rows.map(({ component, f, cpuSeconds }) => {
      const service = SERVICES.includes(component)
      return {
        component,
        'peak RSS MiB': mib(f.peakBytes),
        'RSS at 10/25/50/75/100 % (MiB)': f.at.map(mib).join(' / '),
        'quartile max (MiB)': f.quartileMax.map(mib).join(' / '),
        'Q4 vs Q2': `${f.growth >= 0 ? '+' : ''}${(f.growth * 100).toFixed(1)} %`,
        verdict: service
          ? f.flat
            ? 'flat'
            : `GROWS (> ${FLAT_TOLERANCE * 100} %)`
          : f.flat
            ? 'flat (not a service)'
            : 'grows (not a service: holds the run’s data)',
        'CPU s': cpuSeconds.toFixed(0),
      }
    }),
  )
}
