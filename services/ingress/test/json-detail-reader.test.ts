import { describe, expect, it } from 'vitest'
import {
  JsonDetailError,
  JsonDetailScanner,
  readJsonDetail,
  type JsonDetailItem,
} from '../src/looker/json-detail-reader.ts'

const fields = {
  dimensions: [
    { name: 'people.id', label: 'People ID', tags: ['user_id'] },
    { name: 'people.nick', label: 'People Nick', tags: [] },
  ],
  measures: [{ name: 'visits.total', label: 'Visits Total', tags: [] }],
}

const rows = [
  { 'people.id': { value: 7 }, 'people.nick': { value: 'Zoë "the \\ quoted" 日本 🎈' }, 'visits.total': { value: 0 } },
  {
    'people.id': { value: null },
    'people.nick': { value: 'tab\there, brace } and ] inside' },
    'visits.total': { value: -3.5 },
  },
  {
    'people.id': { value: 9 },
    'people.nick': { value: false },
    'visits.total': { '2024-01': { value: 1 }, '2024-02': { value: 2 } },
  },
]

// Root keys around `fields` and `data`, incl. a nested `data` inside pivots that must not be read as rows.
const document = JSON.stringify(
  {
    id: 'q1',
    ran_at: '2026-11-22T10:00:00+00:00',
    sql: 'SELECT "data" FROM t -- [ { ',
    pivots: [{ key: '2024-01', data: { 'visits.month': '2024-01' }, is_total: false }],
    fields,
    data: rows,
    has_totals: false,
  },
  null,
  1,
)

// eslint-disable-next-line @typescript-eslint/require-await -- an async source, like a socket
async function* chunked(text: string | Buffer, cuts: number[]): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8')
  let previous = 0
  for (const cut of [...cuts, bytes.length]) {
    // Fresh copies, so no chunk aliases another.
    yield new Uint8Array(bytes.subarray(previous, cut))
    previous = cut
  }
}

async function readAll(source: AsyncIterable<Uint8Array>, maxRowBytes = 1 << 20): Promise<JsonDetailItem[]> {
  const items: JsonDetailItem[] = []
  for await (const batch of readJsonDetail(source, { maxRowBytes })) items.push(...batch)
  return items
}

const expected: JsonDetailItem[] = [
  { kind: 'header', fields, ranAt: '2026-11-22T10:00:00+00:00' },
  ...rows.map((value, index) => ({ kind: 'row' as const, row: index + 1, value })),
]

describe('readJsonDetail', () => {
  it('yields the header, then every root data row in order', async () => {
    expect(await readAll(chunked(document, []))).toEqual(expected)
  })

  it('gives the same result for a chunk boundary at every byte', async () => {
    const length = Buffer.byteLength(document)
    for (let cut = 1; cut < length; cut++) {
      expect(await readAll(chunked(document, [cut])), `cut at ${cut}`).toEqual(expected)
    }
  })

  it('gives the same result with one byte per chunk (UTF-8 split across chunks)', async () => {
    const length = Buffer.byteLength(document)
    const cuts = Array.from({ length: length - 1 }, (_, i) => i + 1)
    expect(await readAll(chunked(document, cuts))).toEqual(expected)
  })

  it('skips a UTF-8 byte order mark however the chunks cut it, and refuses a partial one', async () => {
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(document)])
    for (const cuts of [[], [1], [2], [3], [1, 2], [1, 2, 3]]) {
      expect(await readAll(chunked(withBom, cuts)), `cuts ${cuts.join(',')}`).toEqual(expected)
    }
    const partial = Buffer.concat([Buffer.from([0xef, 0xbb]), Buffer.from(document)])
    await expect(readAll(chunked(partial, [1]))).rejects.toThrow(/must start with '\{' \(byte 0 is not/)
  })

  it('reads the compact lite-stream layout', async () => {
    const lite = `{"fields":${JSON.stringify(fields)},"data":[${rows.map((r) => JSON.stringify(r)).join(',')}]}`
    const items = await readAll(chunked(lite, [17, 50, 51]))
    expect(items).toEqual([{ kind: 'header', fields, ranAt: undefined }, ...expected.slice(1)])
  })

  it('accepts an empty data array and yields only the header', async () => {
    expect(await readAll(chunked(`{"fields":${JSON.stringify(fields)},"data":[ ]}`, [5]))).toEqual([
      { kind: 'header', fields, ranAt: undefined },
    ])
  })

  it('holds rows that arrive before fields, then yields them in order', async () => {
    const doc = `{"data":${JSON.stringify(rows)},"ran_at":"x","fields":${JSON.stringify(fields)}}`
    const items = await readAll(chunked(doc, [30]))
    expect(items).toEqual([{ kind: 'header', fields, ranAt: 'x' }, ...expected.slice(1)])
  })

  it('fails clearly when too much data comes before fields', async () => {
    const many = Array.from({ length: 100 }, () => rows[0])
    const doc = `{"data":${JSON.stringify(many)},"fields":${JSON.stringify(fields)}}`
    const read = async () => {
      for await (const _ of readJsonDetail(chunked(doc, []), { maxRowBytes: 4096, maxPendingBytes: 1000 })) {
        // drain
      }
    }
    await expect(read()).rejects.toThrow(/more than 1000 bytes of "data" before "fields"/)
  })

  it('reports the row reached when the document breaks off mid-stream', async () => {
    const cut = document.indexOf('"people.id": {', document.indexOf('"data": [') + 40) // inside row 2
    const truncated = Buffer.from(document).subarray(0, Buffer.byteLength(document.slice(0, cut)))
    const items: JsonDetailItem[] = []
    const read = async () => {
      for await (const batch of readJsonDetail(chunked(truncated, [100]), { maxRowBytes: 1 << 20 }))
        items.push(...batch)
    }
    await expect(read()).rejects.toThrow(
      'Looker result is incomplete: the result broke off inside row 2 of "data", after 1 complete rows.',
    )
    expect(items.filter((item) => item.kind === 'row')).toHaveLength(1)
  })

  it('reports a document that breaks off between rows', async () => {
    const doc = `{"fields":{},"data":[{"a":1},`
    await expect(readAll(chunked(doc, [3]))).rejects.toThrow('broke off inside "data" after row 1.')
  })

  it('reports a document that breaks off after data', async () => {
    const doc = `{"fields":${JSON.stringify(fields)},"data":[]`
    await expect(readAll(chunked(doc, []))).rejects.toThrow(/before the root object closed/)
  })

  it('rejects a non-JSON body such as an HTML error page', async () => {
    await expect(readAll(chunked('<html><body>Not found</body></html>', []))).rejects.toThrow(
      "Looker result is not a JSON object: the document must start with '{' (byte 0 is not; a CSV, HTML or other body?).",
    )
    await expect(readAll(chunked('', []))).rejects.toThrow('the result body was empty')
    await expect(readAll(chunked('[1,2]', []))).rejects.toBeInstanceOf(JsonDetailError)
    await expect(readAll(chunked(' [{"a":1}]', []))).rejects.toThrow(
      'Looker result is a JSON array (byte 1), not a json_detail object: the action asks Looker for json_detail or json_detail_lite_stream, not json.',
    )
    await expect(readAll(chunked(Buffer.from([0x1f, 0x8b, 0x08, 0x00]), []))).rejects.toThrow(
      'Looker result is gzip-compressed (byte 0 is 0x1f): lookstream reads the uncompressed JSON.',
    )
  })

  it('rejects a row that names a key twice, at any depth, instead of keeping one of the values', async () => {
    const doc = [
      '{"fields":{},"data":[',
      '{"u.id":{"value":"a"},"u.id":{"value":"b"}},',
      '{"u.id":{"value":"c","value":"d"}},',
      '{"o.n":{"x":{"value":1},"y":{"value":[{"k":1,"k":2}]}}},',
      '{"u.id":{"value":"e"},"u.plan":{"value":"a:b","rendered":"\\":\\""}}',
      ']}',
    ].join('')
    const reason = (offset: number) =>
      `row has an object that names the same key twice (the row starts at byte ${offset}); JSON keeps one of the two values, so the row is not sent`
    const items = await readAll(chunked(doc, [30, 31, 80]))
    expect(items).toEqual([
      { kind: 'header', fields: {}, ranAt: undefined },
      { kind: 'rejected', row: 1, reason: reason(doc.indexOf('{"u.id":{"value":"a"')) },
      { kind: 'rejected', row: 2, reason: reason(doc.indexOf('{"u.id":{"value":"c"')) },
      { kind: 'rejected', row: 3, reason: reason(doc.indexOf('{"o.n"')) },
      { kind: 'row', row: 4, value: { 'u.id': { value: 'e' }, 'u.plan': { value: 'a:b', rendered: '":"' } } },
    ])
    // Rows held until fields arrive are checked the same way.
    const late = '{"data":[{"a":1,"a":2},{"a":3}],"fields":{}}'
    expect(await readAll(chunked(late, []))).toEqual([
      { kind: 'header', fields: {}, ranAt: undefined },
      { kind: 'rejected', row: 1, reason: reason(9) },
      { kind: 'row', row: 2, value: { a: 3 } },
    ])
  })

  it('fails a fields object that names a key twice', async () => {
    await expect(
      readAll(chunked('{"fields":{"dimensions":[],"dimensions":[{"name":"a"}]},"data":[]}', [])),
    ).rejects.toThrow(
      'Looker result\'s root "fields" has an object that names the same key twice (it starts at byte 10).',
    )
  })

  it('rejects a malformed row on its own and fails on garbage after the document', async () => {
    expect(await readAll(chunked(`{"fields":{},"data":[{"a":},{"a":1}]}`, []))).toEqual([
      { kind: 'header', fields: {}, ranAt: undefined },
      { kind: 'rejected', row: 1, reason: 'row is not valid JSON (the row starts at byte 21)' },
      { kind: 'row', row: 2, value: { a: 1 } },
    ])
    await expect(readAll(chunked(`{"fields":{},"data":[]} x`, []))).rejects.toThrow(/expected the end of the document/)
  })

  it('requires root fields and data', async () => {
    await expect(readAll(chunked(`{"data":[]}`, []))).rejects.toThrow('Looker result has no root "fields" object.')
    await expect(readAll(chunked(`{"fields":{}}`, []))).rejects.toThrow('Looker result has no root "data" array.')
    await expect(readAll(chunked(`{"fields":{},"data":{}}`, []))).rejects.toThrow('root "data" is not an array')
  })

  it('rejects a row over the size limit with its number and goes on with the next rows', async () => {
    const big = { 'people.id': { value: 8 }, 'people.nick': { value: 'x'.repeat(500) } }
    const doc = `{"fields":${JSON.stringify(fields)},"data":[${JSON.stringify(rows[0])},${JSON.stringify(big)},${JSON.stringify(rows[1])}]}`
    const items = await readAll(chunked(doc, [60, 300, 400]), 300)
    expect(items.map((item) => [item.kind, 'row' in item ? item.row : 0])).toEqual([
      ['header', 0],
      ['row', 1],
      ['rejected', 2],
      ['row', 3],
    ])
    expect(items[2]).toEqual({
      kind: 'rejected',
      row: 2,
      reason: `row is over the 300-byte row limit (the row starts at byte ${Buffer.byteLength(doc.slice(0, doc.indexOf(JSON.stringify(big))))})`,
    })
  })

  it('does not hold an oversized row in memory', () => {
    const scanner = new JsonDetailScanner({ maxRowBytes: 1000 })
    scanner.push(Buffer.from(`{"fields":{},"data":[{"a":"`))
    for (let i = 0; i < 1000; i++) scanner.push(Buffer.alloc(10_000, 0x61))
    const items = scanner.push(Buffer.from(`"}]}`))
    expect(items).toEqual([
      { kind: 'header', fields: {}, ranAt: undefined },
      { kind: 'rejected', row: 1, reason: 'row is over the 1000-byte row limit (the row starts at byte 21)' },
    ])
    expect(scanner.end()).toEqual([])
    expect(scanner.bytesRead).toBeGreaterThan(10_000_000)
  })

  it('reads the next chunk only when the consumer asks (backpressure)', async () => {
    let pulled = 0
    // eslint-disable-next-line @typescript-eslint/require-await -- an async source, like a socket
    async function* source(): AsyncGenerator<Uint8Array> {
      const line = (n: number) => Buffer.from(`${n === 0 ? '' : ','}{"n":{"value":${n}}}`)
      pulled++
      yield Buffer.from(`{"fields":{},"data":[`)
      for (let n = 0; n < 5; n++) {
        pulled++
        yield line(n)
      }
      yield Buffer.from(']}')
    }
    const reader = readJsonDetail(source(), { maxRowBytes: 100 })
    const first = await reader.next()
    expect(first.value).toEqual([
      { kind: 'header', fields: {}, ranAt: undefined },
      { kind: 'row', row: 1, value: { n: { value: 0 } } },
    ])
    expect(pulled).toBe(2)
    await reader.return()
  })

  it('fails a fields list over MAX_FIELDS while it streams, before gathering the rest of it', () => {
    const scanner = new JsonDetailScanner({ maxRowBytes: 1000, maxFields: 100 })
    scanner.push(Buffer.from('{"fields":{"dimensions":['))
    let pushed = 0
    while (scanner.error === undefined && pushed < 1000) {
      scanner.push(Buffer.from(`${pushed === 0 ? '' : ','}{"name":"f${pushed}","tags":[]}`))
      pushed++
    }
    expect(pushed).toBe(101)
    expect(scanner.error?.message).toBe(
      "Looker result's fields lists more than 100 fields, over the 100-field limit (MAX_FIELDS).",
    )
  })

  it('counts the fields of every group and names schema problems precisely', async () => {
    const doc = (fields: unknown) => `{"fields":${JSON.stringify(fields)},"data":[]}`
    await expect(
      readAll(chunked(doc({ dimensions: [{ name: 'a' }], measures: [{ name: 'b' }] }), [])),
    ).resolves.toEqual([
      { kind: 'header', fields: { dimensions: [{ name: 'a' }], measures: [{ name: 'b' }] }, ranAt: undefined },
    ])
    await expect(readAll(chunked(doc({ dimensions: [{ name: 'a', label: 3 }] }), []))).rejects.toThrow(
      "Looker result's fields.dimensions[0].label (field a) is a number; it must be a string.",
    )
    await expect(readAll(chunked(doc({ pivots: 'x' }), []))).rejects.toThrow(
      "Looker result's fields.pivots is a string; it must be an array.",
    )
    await expect(readAll(chunked('{"ran_at":5,"fields":{},"data":[]}', []))).rejects.toThrow(
      'Looker result\'s root "ran_at" is not a string (it is a number).',
    )
  })
})
