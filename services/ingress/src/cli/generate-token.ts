import { generateToken } from '../looker/token.ts'

// Prints a new Action Hub token for Looker's Admin › Actions › Add Action Hub.
const secret = process.env.ACTION_HUB_SECRET
if (secret === undefined || secret === '') {
  process.stderr.write('ACTION_HUB_SECRET is not set: the token is signed with it.\n')
  process.exit(1)
}
process.stdout.write(`${generateToken(secret)}\n`)
