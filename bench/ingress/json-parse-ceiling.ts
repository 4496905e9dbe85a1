import { closeSync, openSync, readSync } from 'node:fs'

// The parse ceiling: the least work any row-at-a-time reader of the same document must do. Reads the
// result file in 1 MiB chunks (from the page cache), finds each row at its newline (the generator writes
// one row per line), decodes it from UTF-8 and JSON.parses it. Returns rows parsed and milliseconds.
export function parseRows(path: string): { rows: number; bytes: number; ms: number } {
  const fd = openSync(path, 'r')
  const chunk = Buffer.allocUnsafe(1024 * 1024)
  let carry = Buffer.alloc(0)
  let rows = 0
  let bytes = 0
  let line = 0
  let sink = 0
  const started = performance.now()
  for (;;) {
    const read = readSync(fd, chunk, 0, chunk.length, null)
    if (read === 0) break
    bytes += read
    const data = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, read)]) : chunk.subarray(0, read)
    let start = 0
    for (let newline = data.indexOf(10, start); newline !== -1; newline = data.indexOf(10, start)) {
      // Line 0 is the header ({"ran_at":…,"fields":…,"data":[); rows end in ',' except the last; then ']}'.
      if (line > 0 && data[start] === 0x7b) {
        const end = data[newline - 1] === 0x2c ? newline - 1 : newline
        const row = JSON.parse(data.toString('utf8', start, end)) as Record<string, unknown>
        sink += Object.keys(row).length
        rows++
      }
      line++
      start = newline + 1
    }
    carry = Buffer.from(data.subarray(start))
  }
  const ms = performance.now() - started
  closeSync(fd)
  if (sink === 0 && rows > 0) throw new Error('rows parsed to nothing')
  return { rows, bytes, ms }
}
