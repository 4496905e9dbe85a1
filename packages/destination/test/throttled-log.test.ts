import { pino } from 'pino'
import { Writable } from 'node:stream'
import { describe, expect, it, vi } from 'vitest'
import { ThrottledLog } from '../src/throttled-log.ts'

function capture() {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>)
      callback()
    },
  })
  return { lines, log: pino({ level: 'info' }, stream) }
}

describe('ThrottledLog', () => {
  it('writes one line per key and interval, counting the events it stands for', () => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['Date'] })
    try {
      const { lines, log } = capture()
      const events = new ThrottledLog(log, 10_000)
      for (let i = 0; i < 5; i++)
        events.warn('dead-letter/eu/LS_DEST_REJECTED', { code: 'LS_DEST_REJECTED' }, 'dead-lettered')
      events.warn('park/eu/LS_DEST_TIMEOUT', { code: 'LS_DEST_TIMEOUT' }, 'parked in the retry topic')
      expect(lines.map((line) => [line.msg, line.code, line.similar])).toEqual([
        ['dead-lettered', 'LS_DEST_REJECTED', 0],
        ['parked in the retry topic', 'LS_DEST_TIMEOUT', 0],
      ])
      vi.setSystemTime(1_010_000)
      events.warn('dead-letter/eu/LS_DEST_REJECTED', { code: 'LS_DEST_REJECTED' }, 'dead-lettered')
      expect(lines.at(-1)).toMatchObject({ msg: 'dead-lettered', similar: 4, level: 40 })
    } finally {
      vi.useRealTimers()
    }
  })
})
