import { describe, expect, it } from 'vitest'
import { decodeFields, encodeFields, type Message } from '../src/protocol/codec.ts'
import {
  decodeRequestBody,
  decodeRequestHeader,
  encodeRequest,
  encodeResponse,
  decodeResponseBody,
} from '../src/protocol/frames.ts'
import { API_DEFS } from '../src/protocol/messages/index.ts'
import { Reader } from '../src/protocol/reader.ts'
import { field, type FieldDef, type ScalarType } from '../src/protocol/schema.ts'
import { Writer } from '../src/protocol/writer.ts'

// Sample values for every field a version has (and defaults for the others), so a round trip through the
// generic encoder and decoder must reproduce the message exactly for every API and version.
function sampleScalar(type: ScalarType, seed: number): unknown {
  switch (type) {
    case 'int8':
      return (seed % 100) - 50
    case 'int16':
      return ((seed * 3) % 60_000) - 30_000
    case 'int32':
      return ((seed * 100_003) % 2_000_000_000) - 1_000_000_007
    case 'int64':
      return (seed % 1000) * 2 ** 40 + 12_345
    case 'uint32':
      return 0xfffffff0 - (seed % 1000)
    case 'float64':
      return (seed % 1000) + 0.5
    case 'bool':
      return seed % 2 === 0
    case 'string':
      return `s${seed}-é`
    case 'bytes':
    case 'records':
      return Buffer.alloc(seed % 7, seed)
    case 'uuid':
      return Buffer.alloc(16, seed)
  }
}

function sample(fields: FieldDef[], version: number, seed: number): Message {
  const out: Message = {}
  fields.forEach((f, i) => {
    const s = seed * 31 + i
    if (version < f.min || version > f.max) out[f.name] = Array.isArray(f.default) ? [] : f.default
    else if (version >= f.nullableMin && s % 5 === 0) out[f.name] = null
    else if (typeof f.type === 'string') out[f.name] = sampleScalar(f.type, s)
    else if (Array.isArray(f.type)) out[f.name] = [0, 1].map((k) => sample(f.type as FieldDef[], version, s + k))
    else out[f.name] = [0, 1, 2].map((k) => sampleScalar((f.type as { arrayOf: ScalarType }).arrayOf, s + k))
  })
  return out
}

describe('table-driven codec', () => {
  for (const def of API_DEFS) {
    it(`${def.name} round-trips requests and responses in every version ${def.minVersion}-${def.maxVersion}`, () => {
      for (let v = def.minVersion; v <= def.maxVersion; v++) {
        const flexible = v >= def.flexibleFrom
        for (const fields of [def.request, def.response]) {
          const msg = sample(fields, v, v + 1)
          const w = new Writer()
          encodeFields(w, fields, msg, v, flexible)
          const buf = Buffer.concat(w.finish())
          const r = new Reader(buf)
          expect(decodeFields(r, fields, v, flexible), `${def.name} v${v}`).toEqual(msg)
          expect(r.remaining()).toBe(0)
        }
      }
    })
  }

  it('frames requests with header v1/v2 and responses with header v0/v1 (ApiVersions always v0)', () => {
    const apiVersions = API_DEFS.find((d) => d.key === 18)!
    const req = encodeRequest(
      apiVersions,
      { apiKey: 18, apiVersion: 3, correlationId: 9, clientId: 'c' },
      {
        clientSoftwareName: 'x',
        clientSoftwareVersion: '1',
      },
    )
    const r = new Reader(req, 4)
    expect(decodeRequestHeader(r)).toEqual({ apiKey: 18, apiVersion: 3, correlationId: 9, clientId: 'c' })
    expect(decodeRequestBody(apiVersions, 3, r)).toEqual({ clientSoftwareName: 'x', clientSoftwareVersion: '1' })
    const res = Buffer.concat(encodeResponse(apiVersions, 3, 9, { errorCode: 0, apiKeys: [], throttleTimeMs: 0 }))
    // size, correlation id, then straight into the body: no tagged-field byte in the header.
    expect(res.readInt32BE(0)).toBe(res.length - 4)
    expect(res.readInt16BE(8)).toBe(0)
    expect(decodeResponseBody(apiVersions, 3, res.subarray(4)).body).toMatchObject({
      errorCode: 0,
      apiKeys: [],
      throttleTimeMs: 0,
    })
  })

  it('fills fields a version lacks with Kafka defaults', () => {
    const join = API_DEFS.find((d) => d.key === 11)!
    const w = new Writer()
    encodeFields(
      w,
      join.request,
      { groupId: 'g', sessionTimeoutMs: 1, memberId: '', protocolType: 'consumer', protocols: [] },
      0,
      false,
    )
    const decoded = decodeFields(new Reader(Buffer.concat(w.finish())), join.request, 0, false)
    expect(decoded.rebalanceTimeoutMs).toBe(-1)
    expect(decoded.groupInstanceId).toBeNull()
    const metadata = API_DEFS.find((d) => d.key === 3)!
    const m = new Writer()
    encodeFields(m, metadata.request, { topics: [] }, 3, false)
    expect(decodeFields(new Reader(Buffer.concat(m.finish())), metadata.request, 3, false).allowAutoTopicCreation).toBe(
      true,
    )
  })

  it('writes tagged fields only when set, in tag order, and skips unknown tags when reading', () => {
    const fields = [
      field('a', 'int32'),
      field('late', 'string', { tag: 5, v: '1+' }),
      field('early', 'int64', { tag: 1, v: '1+', default: -1 }),
      field('list', [field('x', 'int16'), field('note', 'string', { tag: 0, nullable: '0+' })]),
    ]
    const w = new Writer()
    encodeFields(w, fields, { a: 7, late: 'L', early: -1, list: [{ x: 1, note: 'n' }, { x: 2 }] }, 1, true)
    const buf = Buffer.concat(w.finish())
    const decoded = decodeFields(new Reader(buf), fields, 1, true)
    expect(decoded).toEqual({
      a: 7,
      late: 'L',
      early: -1,
      list: [
        { x: 1, note: 'n' },
        { x: 2, note: null },
      ],
    })
    // early equals its default, so only tag 5 is in the top-level section.
    const withoutTags = new Writer()
    encodeFields(withoutTags, fields, { a: 7, list: [{ x: 1, note: 'n' }, { x: 2 }] }, 1, true)
    const plain = Buffer.concat(withoutTags.finish())
    // Tag 5's entry: tag byte, size byte, compact string 'L' (2 bytes); the count byte is there either way.
    expect(buf.length - plain.length).toBe(1 + 1 + 2)
    // A reader that knows none of the tags still decodes the rest.
    const untagged = fields
      .map((f) => ({ ...f, tag: undefined }))
      .filter((f) => f.name !== 'late' && f.name !== 'early')
    const r = new Reader(buf)
    expect(decodeFields(r, [untagged[0]!, { ...untagged[1]!, type: [field('x', 'int16')] }], 1, true)).toEqual({
      a: 7,
      list: [{ x: 1 }, { x: 2 }],
    })
    expect(r.remaining()).toBe(0)
    // Non-flexible versions have no tagged fields at all.
    const v0 = new Writer()
    encodeFields(v0, fields, { a: 7, late: 'ignored', list: [] }, 0, false)
    expect(Buffer.concat(v0.finish()).length).toBe(8)
  })
})
