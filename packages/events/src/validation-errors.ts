import { type TLocalizedValidationError } from 'typebox/error'

// A schema path ending in /anyOf/<n> is the root of one union branch; errors belong to the innermost union.
const BRANCH_ROOT = /\/anyOf\/\d+$/
const INSIDE_BRANCH = /\/anyOf\/\d+(?!.*\/anyOf\/\d)(\/.*)?$/

function pointer(path: string): string {
  return path === '' ? '/' : path
}

function requiredNames(error: TLocalizedValidationError): string[] {
  return (error.params as { requiredProperties?: string[] }).requiredProperties ?? []
}

/**
 * Turns TypeBox's raw error list into one line per problem, "<JSON pointer>: <what is wrong>". The raw list
 * reports every union branch; here a branch whose type did not even match is dropped, so `"Braze": {"x": 1}`
 * reads "/integrations/Braze/x: unknown property" rather than also "must be boolean".
 */
export function formatValidationErrors(errors: readonly TLocalizedValidationError[]): string[] {
  // Per union (keyed by its schema path): the types/constants of branches that did not match at all,
  // the names of branches that are only `required` rules (the identity rule), and whether any branch
  // matched the type and so has its own, more precise errors.
  const mismatched = new Map<string, string[]>()
  const required = new Map<string, string[]>()
  const explained = new Set<string>()
  for (const error of errors) {
    if (!INSIDE_BRANCH.test(error.schemaPath)) continue
    const union = error.schemaPath.replace(INSIDE_BRANCH, '')
    const atBranchRoot = BRANCH_ROOT.test(error.schemaPath)
    if (atBranchRoot && error.keyword === 'type') {
      mismatched.set(union, [...(mismatched.get(union) ?? []), String(error.params.type)])
    } else if (atBranchRoot && error.keyword === 'const') {
      const allowed = (error.params as { allowedValue?: unknown }).allowedValue
      mismatched.set(union, [...(mismatched.get(union) ?? []), JSON.stringify(allowed)])
    } else if (atBranchRoot && error.keyword === 'required') {
      required.set(union, [...(required.get(union) ?? []), ...requiredNames(error)])
    } else {
      explained.add(union)
    }
  }

  const lines: string[] = []
  for (const error of errors) {
    const path = pointer(error.instancePath)
    const atBranchRoot = BRANCH_ROOT.test(error.schemaPath)
    if (error.keyword === 'additionalProperties') continue // reported per property as a 'boolean' error
    if (error.keyword === 'boolean' && error.schemaPath.endsWith('/additionalProperties')) {
      lines.push(`${path}: unknown property`)
    } else if (error.keyword === 'anyOf') {
      const names = required.get(error.schemaPath)
      const expected = mismatched.get(error.schemaPath)
      if (names) lines.push(`${path}: must have one of ${names.join(', ')}`)
      else if (!explained.has(error.schemaPath)) lines.push(`${path}: must be ${expected?.join(' or ') ?? 'valid'}`)
    } else if (atBranchRoot && ['type', 'const', 'required'].includes(error.keyword)) {
      continue // summarised by the union's 'anyOf' error
    } else if (error.keyword === 'required') {
      lines.push(`${path}: must have ${requiredNames(error).join(', ')}`)
    } else {
      lines.push(`${path}: ${error.message}`)
    }
  }
  return [...new Set(lines)]
}
