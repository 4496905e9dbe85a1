import { tmpdir } from 'node:os'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  AttachmentDecodeError,
  attachmentSource,
  ExecuteBodyError,
  readExecuteBody,
  type ExecuteBody,
} from '../src/execute/execute-body.ts'

// The execute body is read with bounded memory: attachment.data is spooled still encoded and decoded while it is
// read back. Property: for any attachment text (any Unicode, escapes, quotes, backslashes) and base64 of any
// bytes, cut into chunks anywhere, the decoded bytes are exactly the original and the envelope is the rest.

const limits = { maxBodyBytes: 64 * 1024 * 1024, maxEnvelopeBytes: 1024 * 1024, spoolDir: tmpdir() }

// eslint-disable-next-line @typescript-eslint/require-await -- an async source, like the request stream
async function* chunks(bytes: Buffer, cuts: number[]): AsyncGenerator<Uint8Array> {
  let from = 0
  for (const cut of [...cuts.map((c) => c % (bytes.length + 1))].sort((a, b) => a - b)) {
    yield bytes.subarray(from, Math.max(from, cut))
    from = Math.max(from, cut)
  }
  yield bytes.subarray(from)
}

async function decoded(body: ExecuteBody, base64: boolean): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const part of attachmentSource(body.attachment!, base64)) parts.push(part)
  return Buffer.concat(parts)
}

describe('readExecuteBody', () => {
  it('spools attachment.data and gives back exactly its text, however the body is cut', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (text, cuts) => {
          const envelope = {
            type: 'query',
            attachment: { mimetype: 'application/json', data: text },
            form_params: { a: '"}' },
          }
          const body = await readExecuteBody(chunks(Buffer.from(JSON.stringify(envelope)), cuts), limits)
          try {
            expect(body.envelope).toEqual({ ...envelope, attachment: { mimetype: 'application/json', data: '' } })
            expect((await decoded(body, false)).toString('utf8')).toBe(text)
          } finally {
            await body.cleanup()
          }
        },
      ),
      { numRuns: 200 },
    )
  })

  it('decodes base64 of any bytes, with escaped slashes and line breaks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 8 }), async (bytes, cuts) => {
        const base64 = Buffer.from(bytes)
          .toString('base64')
          .replace(/(.{76})/g, '$1\n')
        const raw = `{"attachment":{"data":${JSON.stringify(base64).replace(/\//g, '\\/')},"mimetype":"application/json;base64"}}`
        const body = await readExecuteBody(chunks(Buffer.from(raw), cuts), limits)
        try {
          expect((await decoded(body, true)).equals(Buffer.from(bytes))).toBe(true)
        } finally {
          await body.cleanup()
        }
      }),
      { numRuns: 200 },
    )
  })

  it.each([
    [
      'a character outside base64',
      '"ab*d"',
      true,
      'attachment.data is not valid base64 (at character 2 of its decoded string).',
    ],
    [
      'data after padding',
      '"QQ==QQ=="',
      true,
      'attachment.data is not valid base64 (at character 4 of its decoded string).',
    ],
    [
      'a lone surrogate escape',
      '"x\\ud800y"',
      false,
      'attachment.data holds a lone UTF-16 surrogate escape before byte 7 of its content.',
    ],
    [
      'an unknown escape',
      '"ab\\qc"',
      false,
      'attachment.data is not a valid JSON string: bad escape at byte 2 of its content.',
    ],
  ])('fails on %s, saying where', async (_name, data, base64, message) => {
    const body = await readExecuteBody(chunks(Buffer.from(`{"attachment":{"data":${data}}}`), []), limits)
    try {
      await expect(decoded(body, base64)).rejects.toThrow(new AttachmentDecodeError(message))
    } finally {
      await body.cleanup()
    }
  })

  it('keeps the exact text of a number a double cannot hold (a scheduled_plan_id beyond 2^53)', async () => {
    const raw = '{"scheduled_plan":{"scheduled_plan_id":12345678901234567890,"n":7},"form_params":{"event":1e400}}'
    const body = await readExecuteBody(chunks(Buffer.from(raw), [20]), limits)
    try {
      expect(body.envelope).toEqual({
        scheduled_plan: { scheduled_plan_id: '12345678901234567890', n: 7 },
        form_params: { event: '1e400' },
      })
    } finally {
      await body.cleanup()
    }
  })

  it.each([
    [
      'not JSON',
      '{"type":"query",}',
      400,
      'The execute body is not valid JSON (at character 16 of the body without attachment.data).',
    ],
    ['an empty body', '', 400, 'The execute body is empty; it must be a JSON object.'],
    [
      'two attachment.data',
      '{"attachment":{"data":"a","data":"b"}}',
      400,
      'The execute body has more than one attachment.data.',
    ],
    [
      'a key named twice (JSON.parse would keep the second)',
      '{"attachment":{"data":"a"},"form_params":{},"attachment":{"mimetype":"application/json;base64"}}',
      400,
      'The execute body has an object that names the same key twice.',
    ],
    [
      'attachment.data under an escaped key (it would read as no attachment)',
      '{"attachment":{"d\\u0061ta":"a"}}',
      400,
      'The execute body has attachment.data that is not a JSON string under the keys "attachment" and "data" written without escapes.',
    ],
    [
      'attachment.data that is not a string',
      '{"attachment":{"data":12}}',
      400,
      'The execute body has attachment.data that is not a JSON string under the keys "attachment" and "data" written without escapes.',
    ],
    [
      'broken off inside attachment.data',
      '{"attachment":{"data":"abc',
      400,
      'The execute body broke off inside attachment.data.',
    ],
    [
      'an envelope over its limit',
      `{"x":"${'y'.repeat(2000)}"}`,
      413,
      'The execute body without attachment.data is over the 1024-byte limit (MAX_ENVELOPE_BYTES).',
    ],
  ])('refuses %s', async (_name, raw, status, message) => {
    const read = readExecuteBody(chunks(Buffer.from(raw), []), { ...limits, maxEnvelopeBytes: 1024 })
    await expect(read).rejects.toThrow(message)
    await expect(read).rejects.toBeInstanceOf(ExecuteBodyError)
    await expect(read).rejects.toMatchObject({ status })
  })
})
