// Looker's verdict names the send ("Send id <id>." and, with the send history page on, its URL). Tests that
// compare whole verdicts check that part here, against the answer's send_id, and compare the rest.
const POINTER = / Send id ([0-9a-f-]{36})\.(?: Rows and reasons: \S+)?/

export function withoutSendPointer<T>(looker: T): T {
  const answer = looker as { message?: unknown; send_id?: unknown }
  if (typeof answer.message !== 'string') return looker
  const match = POINTER.exec(answer.message)
  if (match === null) throw new Error(`the verdict does not name its send: ${answer.message}`)
  if (answer.send_id !== undefined && match[1] !== answer.send_id) {
    throw new Error(`the verdict names send ${match[1]}, the answer's send_id is ${JSON.stringify(answer.send_id)}`)
  }
  return { ...answer, message: answer.message.replace(POINTER, '') } as T
}
