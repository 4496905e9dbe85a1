// JSON.parse that keeps every number's value exact, and the check the destination services make of other
// producers' messages.
//
// A JSON number is read into a double. When the double's shortest decimal form (what JSON.stringify writes) has
// the same decimal value as the number's source text, nothing is lost and the number stays a number (`1.50`
// becomes 1.5, `1E2` becomes 100). When it does not (more significant digits than a double holds, e.g.
// 9007199254740993 or a NUMBER(38) id, or a magnitude beyond it, e.g. 1e400 or 1e-400), the value becomes a
// string holding the number's source text exactly. docs/producing.md describes this to consumers.
//
// The check needs the source text (the reviver's `context.source`), and a reviver costs several times a plain
// JSON.parse, so the caller decides first: a number can only be inexact when it has 16 or more digits or an
// exponent (a decimal of at most 15 significant digits survives the trip through a double). The reader notes
// either while it scans a row's bytes outside strings; the usual row has neither and goes straight to JSON.parse.

/** Parses row text; throws SyntaxError like JSON.parse. `mayBeInexact`: a number has ≥ 16 digits or an exponent. */
export function parseExact(text: string, mayBeInexact = true): unknown {
  return mayBeInexact ? JSON.parse(text, keepExact as never) : JSON.parse(text)
}

function keepExact(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number') return value
  const source = context?.source
  if (source === undefined) return value
  const written = String(value)
  if (written === source || sameDecimal(written, source)) return value
  return source
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/

/** `sign digits e exponent` with no leading or trailing zeros in `digits`; "0" for zero. */
function normalDecimal(text: string): string | undefined {
  const match = DECIMAL.exec(text)
  if (match === null) return undefined
  const fraction = match[3] ?? ''
  const all = (match[2]! + fraction).replace(/^0+/, '')
  if (all === '') return '0'
  const digits = all.replace(/0+$/, '')
  const exponentText = match[4] ?? '0'
  // A non-zero number with a 16-digit exponent is far outside any double: it cannot equal one.
  if (exponentText.replace(/^[+-]?0*/, '').length > 15) return undefined
  const exponent = Number(exponentText) - fraction.length + (all.length - digits.length)
  return `${match[1]}${digits}e${exponent}`
}

/** Whether two JSON number texts denote the same decimal value (zero's sign ignored). */
export function sameDecimal(a: string, b: string): boolean {
  const left = normalDecimal(a)
  return left !== undefined && left === normalDecimal(b)
}

// A JSON number (after ':', ',' or '[') of 16 or more characters of digits and '.', or with an exponent. A number of
// at most 15 digits always survives a double. The pattern may also match text inside a string; that only costs the
// exact check.
const MAYBE_INEXACT = /[:,[]\s*-?(?:[\d.]{16}|\d[\d.]*[eE])/

/**
 * Whether JSON text may hold a number a double cannot hold exactly: one of 16 or more significant digits or with
 * an exponent. Most messages hold neither, and this one regular expression is all they pay.
 */
export function mayHoldInexactNumber(text: string): boolean {
  return MAYBE_INEXACT.test(text)
}

const INEXACT = Symbol('inexact number')

/**
 * The JSON pointer of the first number in `text` a double cannot hold exactly (more significant digits than it
 * keeps, or beyond its range: 9007199254740993, 0.10000000000000000001, 1e400, 1e-400), or undefined when every
 * number survives JSON.parse as written. Throws SyntaxError like JSON.parse.
 */
export function firstInexactNumber(text: string): string | undefined {
  const parsed: unknown = JSON.parse(text, (_key, value: unknown, context?: { source?: string }) => {
    if (typeof value !== 'number' || context?.source === undefined) return value
    const written = String(value)
    return written === context.source || sameDecimal(written, context.source) ? value : INEXACT
  })
  return pointerTo(parsed, '')
}

function pointerTo(value: unknown, path: string): string | undefined {
  if (value === INEXACT) return path === '' ? '/' : path
  if (value === null || typeof value !== 'object') return undefined
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = pointerTo(value[i], `${path}/${i}`)
      if (found !== undefined) return found
    }
    return undefined
  }
  for (const key in value as Record<string, unknown>) {
    const found = pointerTo(
      (value as Record<string, unknown>)[key],
      `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`,
    )
    if (found !== undefined) return found
  }
  return undefined
}
