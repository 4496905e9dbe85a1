import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { validateMessage } from '../src/index.ts'

const doc = readFileSync(new URL('../../../docs/producing.md', import.meta.url), 'utf8')
const examples = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((match) => JSON.parse(match[1]!) as unknown)

describe('docs/producing.md', () => {
  it('has an example of each message type', () => {
    expect(examples.map((example) => (example as { type: string }).type)).toEqual(['identify', 'track', 'group'])
  })

  it.each(examples.map((example) => [(example as { type: string }).type, example]))(
    'its %s example is a valid message',
    (_type, example) => {
      expect(validateMessage(example)).toEqual({ ok: true, message: example })
    },
  )
})
