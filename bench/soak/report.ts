// The memory and delivery figures of a soak's samples.csv, e.g. of a run cut short or still running:
//   node --conditions=@lookstream/source bench/soak/report.ts /tmp/lookstream-soak-out-XXXX/samples.csv [--rows N]
// Per component the same table as bench/soak/run.ts (peak, RSS at 10/25/50/75/100 %, quartile maxima, the verdict,
// CPU seconds from the per-second CPU percentages); per destination the rows delivered at the last sample and the
// mean rate from the first sample.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { flatness, markdownTable, memoryTable, type Sample } from './flatness.ts'

const { values, positionals } = parseArgs({ options: { rows: { type: 'string' } }, allowPositionals: true })
const file = positionals[0]
if (file === undefined) throw new Error('usage: report.ts <samples.csv> [--rows N]')
const [header, ...lines] = readFileSync(file, 'utf8').trimEnd().split('\n')
const columns = header!.split(',')
const rows = lines.map((line) => line.split(','))
if (rows.length === 0) throw new Error(`${file} has no samples`)
const col = (name: string) => {
  const i = columns.indexOf(name)
  if (i < 0) throw new Error(`${file} has no column ${name}`)
  return i
}
const elapsed = col('elapsed_s')
const load = col('load1')
const components = columns.filter((c) => c.endsWith('_rss_mib')).map((c) => c.slice(0, -'_rss_mib'.length))
const first = rows[0]!
const last = rows[rows.length - 1]!
const seconds = Number(last[elapsed]) - Number(first[elapsed])
const memory = components.map((component) => {
  const rss = col(`${component}_rss_mib`)
  const cpu = col(`${component}_cpu_pct`)
  const samples: Sample[] = rows.map((r) => ({ t: Number(r[elapsed]), rssBytes: Number(r[rss]) * 1048576 }))
  // Each sample's CPU percentage covers the interval since the one before.
  let cpuSeconds = 0
  for (let i = 1; i < rows.length; i++) {
    cpuSeconds += (Number(rows[i]![cpu]) / 100) * (Number(rows[i]![elapsed]) - Number(rows[i - 1]![elapsed]))
  }
  return { component, f: flatness(samples), cpuSeconds }
})
const expected = values.rows === undefined ? undefined : Number(values.rows)
const destinations = columns.filter((c) => c.endsWith('_delivered'))
const loads = rows.map((r) => Number(r[load]))
process.stdout.write(
  [
    `${file}: ${rows.length} samples over ${seconds.toFixed(0)} s (${first[0]} → ${last[0]}), ` +
      `1-min load ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`,
    '',
    markdownTable(
      destinations.map((c) => {
        const delivered = Number(last[col(c)])
        return {
          destination: c.slice(0, -'_delivered'.length),
          'delivered at the last sample': delivered,
          ...(expected === undefined ? {} : { 'of rows': `${((delivered / expected) * 100).toFixed(1)} %` }),
          'rows/s (mean)': seconds > 0 ? Math.round(delivered / seconds) : '-',
        }
      }),
    ),
    '',
    memoryTable(memory),
    '',
  ].join('\n'),
)
