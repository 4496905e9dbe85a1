import { generateToken } from '../looker/token.ts'

// Prints a new Action Hub token for Looker's Admin › Actions › Add Action Hub.
const MIN_SECRET_LENGTH = 16 // as the ingress's configuration requires (config.ts)
const secret = process.env.ACTION_HUB_SECRET
if (secret === undefined || secret === '') {
  process.stderr.write('ACTION_HUB_SECRET is not set: the token is signed with it.\n')
  process.exit(1)
}
if (secret.length < MIN_SECRET_LENGTH) {
  process.stderr.write(
    `ACTION_HUB_SECRET is shorter than ${MIN_SECRET_LENGTH} characters: the ingress would not start with it.\n`,
  )
  process.exit(1)
}
process.stdout.write(`${generateToken(secret)}\n`)
