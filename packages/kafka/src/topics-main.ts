import { runTopicsCommand } from './topics-command.ts'

process.exitCode = await runTopicsCommand(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
})
