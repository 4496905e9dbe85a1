import fc from 'fast-check'

// Generated Looker results for the property-based tests, with what each row must become. Numbers are generated as
// JSON source text; the expected value is worked out here with exact rational arithmetic (BigInt), independently
// of the ingress's own check: a number stays a number when the JSON written from the double JSON.parse makes of it
// has exactly the same value, and otherwise must arrive as a string of its source text.

export const CANARY = 'S3CRET'

export type Model =
  | { kind: 'number'; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'literal'; value: boolean | null }
  | { kind: 'array'; items: Model[] }
  | { kind: 'object'; entries: [string, Model][] }

export type Cell = { kind: 'plain'; value: Model } | { kind: 'pivot'; entries: [string, Model][] }

export interface FuzzRow {
  id: Model | undefined
  cells: [string, Cell][]
  /** How the row is broken, if it is: the row must be rejected with this reason's start. */
  broken?: 'utf8' | 'json' | 'deep'
}

export interface FuzzLook {
  fields: string[]
  rows: FuzzRow[]
}

/** Exact value of a JSON number text as [numerator, power of ten]; undefined for text that is not one. */
function rational(text: string): [bigint, number] | undefined {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)
  if (match === null) return undefined
  const fraction = match[3] ?? ''
  const digits = BigInt(match[2]! + fraction)
  return [match[1] === '-' ? -digits : digits, Number(match[4] ?? '0') - fraction.length]
}

function sameValue(a: [bigint, number], b: [bigint, number]): boolean {
  if (a[0] === 0n || b[0] === 0n) return a[0] === b[0]
  const shift = Math.min(a[1], b[1])
  return a[0] * 10n ** BigInt(a[1] - shift) === b[0] * 10n ** BigInt(b[1] - shift)
}

/**
 * Whether the number JSON.parse reads from `text`, written back as JSON (its shortest decimal form), has exactly
 * the value `text` writes: then a consumer reading the message gets the number Looker wrote.
 */
export function isExact(text: string): boolean {
  const value = Number(text)
  if (!Number.isFinite(value)) return false
  return sameValue(rational(text)!, rational(String(value))!)
}

/** What a model value must arrive as in the canonical message (after JSON.stringify and JSON.parse). */
export function expected(model: Model): unknown {
  switch (model.kind) {
    case 'number': {
      if (!isExact(model.text)) return model.text
      const value = Number(model.text)
      return value === 0 ? 0 : value // JSON has one zero: -0 is written as 0
    }
    case 'string':
    case 'literal':
      return model.value
    case 'array':
      return model.items.map(expected)
    case 'object':
      return Object.fromEntries(model.entries.map(([key, value]) => [key, expected(value)]))
  }
}

/** What a user_id cell must arrive as: its exact digits for numbers. */
export function expectedId(model: Model): string {
  if (model.kind === 'string') return model.value
  if (model.kind !== 'number') throw new Error('ids are strings or numbers')
  if (!isExact(model.text)) return model.text
  const value = Number(model.text)
  if (!Number.isInteger(value)) return String(value)
  // The source's own value, written out in digits.
  const [numerator, exponent] = rational(model.text)!
  return (exponent >= 0 ? numerator * 10n ** BigInt(exponent) : numerator / 10n ** BigInt(-exponent)).toString()
}

export function render(model: Model): string {
  switch (model.kind) {
    case 'number':
      return model.text
    case 'string':
    case 'literal':
      return JSON.stringify(model.value)
    case 'array':
      return `[${model.items.map(render).join(',')}]`
    case 'object':
      return `{${model.entries.map(([key, value]) => `${JSON.stringify(key)}:${render(value)}`).join(',')}}`
  }
}

/** The row's bytes as Looker would write them (json_detail_lite_stream cells). */
export function renderRow(row: FuzzRow): Buffer {
  const cells = row.cells.map(([name, cell]) => {
    const text =
      cell.kind === 'plain'
        ? `{"value":${render(cell.value)}}`
        : `{${cell.entries.map(([key, value]) => `${JSON.stringify(key)}:{"value":${render(value)}}`).join(',')}}`
    return `${JSON.stringify(name)}:${text}`
  })
  if (row.id !== undefined) cells.unshift(`"u.id":{"value":${render(row.id)}}`)
  if (row.broken === 'json') cells.push(`"broken":{"value":${CANARY}}`)
  if (row.broken === 'deep') cells.push(`"deep":{"value":${'['.repeat(100)}"${CANARY}"${']'.repeat(100)}}`)
  const text = `{${cells.join(',')}}`
  if (row.broken !== 'utf8') return Buffer.from(text)
  return Buffer.concat([
    Buffer.from(`{"bad":{"value":"${CANARY}`),
    Buffer.of(0xc3, 0x28),
    Buffer.from(`"},${text.slice(1)}`),
  ])
}

/** The document's bytes and the byte offset where each row starts. */
export function renderLook(look: FuzzLook): { bytes: Buffer; offsets: number[] } {
  const dimensions = [{ name: 'u.id', tags: ['user_id'] }, ...look.fields.map((name) => ({ name, tags: [] }))]
  const head = `{"ran_at":"2026-11-22T00:00:00Z","fields":${JSON.stringify({ dimensions })},"data":[`
  const parts: Buffer[] = [Buffer.from(head)]
  const offsets: number[] = []
  let length = parts[0]!.length
  look.rows.forEach((row, index) => {
    if (index > 0) {
      parts.push(Buffer.from(','))
      length++
    }
    const bytes = renderRow(row)
    offsets.push(length)
    parts.push(bytes)
    length += bytes.length
  })
  parts.push(Buffer.from(']}'))
  return { bytes: Buffer.concat(parts), offsets }
}

/** The traits a well-formed row must produce. */
export function expectedTraits(look: FuzzLook, row: FuzzRow): Record<string, unknown> {
  const known = new Set(look.fields)
  return Object.fromEntries(
    row.cells
      .filter(([name]) => known.has(name))
      .map(([name, cell]) => [
        name,
        cell.kind === 'plain'
          ? expected(cell.value)
          : Object.fromEntries(cell.entries.map(([key, value]) => [key, expected(value)])),
      ]),
  )
}

const digits = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max })

// Numbers of every shape: short and long integers, long fractions, exponents near and past a double's range.
export const numberText: fc.Arbitrary<string> = fc
  .tuple(
    fc.boolean(),
    fc.oneof(digits(1, 5), digits(14, 40)),
    fc.option(digits(1, 25), { nil: undefined }),
    fc.option(fc.integer({ min: -420, max: 420 }), { nil: undefined }),
  )
  .map(([negative, whole, fraction, exponent]) => {
    const int = whole.replace(/^0+(?=\d)/, '')
    return `${negative ? '-' : ''}${int}${fraction === undefined ? '' : `.${fraction}`}${exponent === undefined ? '' : `e${exponent}`}`
  })

const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }).map((s) => `${CANARY}${s}`),
  fc.constantFrom('', ' ', '\uFFFD', '1e400', '9007199254740993', '__proto__', '"}]', '\\'),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
)

const key = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', 'value', 'a.b', ''),
  fc.string({ maxLength: 6 }),
)

export const model: fc.Arbitrary<Model> = fc.letrec<{ value: Model }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    numberText.map((t): Model => ({ kind: 'number', text: t })),
    text.map((value): Model => ({ kind: 'string', value })),
    fc.constantFrom<Model>(
      { kind: 'literal', value: true },
      { kind: 'literal', value: false },
      { kind: 'literal', value: null },
    ),
    fc.array(tie('value'), { maxLength: 3 }).map((items): Model => ({ kind: 'array', items })),
    fc
      .uniqueArray(fc.tuple(key, tie('value')), { maxLength: 3, selector: ([k]) => k })
      .map((entries): Model => ({ kind: 'object', entries })),
  ),
})).value

const fieldName = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'hasOwnProperty', 'u.n'),
  fc.string({ minLength: 1, maxLength: 8 }),
)

const idModel: fc.Arbitrary<Model> = fc.oneof(
  numberText.map((t): Model => ({ kind: 'number', text: t })),
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
    .filter((s) => s.trim() !== '')
    .map((s): Model => ({ kind: 'string', value: `${CANARY}${s}` })),
)

export const look: fc.Arbitrary<FuzzLook> = fc
  .uniqueArray(
    fieldName.filter((name) => name !== 'u.id' && name !== 'bad' && name !== 'broken' && name !== 'deep'),
    {
      minLength: 1,
      maxLength: 60,
    },
  )
  .chain((fields) => {
    const cell: fc.Arbitrary<Cell> = fc.oneof(
      { weight: 4, arbitrary: model.map((value): Cell => ({ kind: 'plain', value })) },
      {
        weight: 1,
        arbitrary: fc
          .uniqueArray(
            fc.tuple(
              key.filter((k) => k !== 'value'),
              model,
            ),
            { minLength: 1, maxLength: 3, selector: ([k]) => k },
          )
          .map((entries): Cell => ({ kind: 'pivot', entries })),
      },
    )
    const row: fc.Arbitrary<FuzzRow> = fc.record({
      id: idModel,
      cells: fc.uniqueArray(fc.tuple(fc.oneof(fc.constantFrom(...fields), fc.constant('extra.col')), cell), {
        maxLength: 8,
        selector: ([name]) => name,
      }),
      broken: fc.option(fc.constantFrom<'utf8' | 'json' | 'deep'>('utf8', 'json', 'deep'), { freq: 6, nil: undefined }),
    })
    return fc.record({ fields: fc.constant(fields), rows: fc.array(row, { minLength: 1, maxLength: 12 }) })
  })

export const BROKEN_REASON = {
  utf8: 'row is not valid UTF-8 (the row starts at byte ',
  json: 'row is not valid JSON (the row starts at byte ',
  deep: 'row is nested deeper than 64 levels (the row starts at byte ',
} as const
