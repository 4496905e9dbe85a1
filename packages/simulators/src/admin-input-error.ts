/** A malformed admin request: answered with 400 and the message. */
export class AdminInputError extends Error {
  override name = 'AdminInputError'
}
