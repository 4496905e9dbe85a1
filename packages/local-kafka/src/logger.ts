import { type LogFn, type LogLevel } from './broker/context.ts'

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

// JSON lines on stderr; stdout carries only the "listening" line that process.ts waits for.
export function createLogger(level: LogLevel | 'silent'): LogFn {
  const min = level === 'silent' ? Infinity : RANK[level]
  return (lvl, msg, fields) => {
    if (RANK[lvl] < min) return
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }) + '\n')
  }
}
